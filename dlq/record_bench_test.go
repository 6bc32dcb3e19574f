package dlq

import (
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// BenchmarkRecord is the cost of a dead-letter record's headers: a tenth of the orders
// example's records fail to decode, and each gets one.
func BenchmarkRecord(b *testing.B) {
	rec := &record.Record{Key: []byte("c42"), Value: []byte(`{"order_id":"o1","amount": }`), Topic: "orders", Partition: 3, Offset: 123456789,
		Timestamp: time.UnixMilli(1700000000000), OrigHeaders: []record.Header{{Key: "seq", Value: []byte("17")}}}
	f := Failure{Pipeline: "orders", Stage: "parse", Reason: "decode json: unexpected end of JSON input", Attempts: 1, At: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		Record(rec, f)
	}
}
