package devbroker

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// OrdersFeed makes n records for the orders example (pipelines/orders.yaml), each with a
// "seq" header holding its index and a key among 97 customers. By index modulo 10: 0 is bad
// JSON (for the DLQ), 1 has amount 0 (filtered out), 2 is big (amount ≥ 1000), the rest go
// to `out`.
func OrdersFeed(n int) []Record { return OrdersFeedRange(0, n) }

// OrdersFeedRange makes the records from..to-1 of the feed, for tests that feed in parts.
func OrdersFeedRange(from, to int) []Record {
	recs := make([]Record, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		var body string
		switch i % 10 {
		case 0:
			body = fmt.Sprintf(`{"order_id": "o%d", "amount": }`, i)
		case 1:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"c%d","amount":0,"region":"eu"}`, i, i%97)
		case 2:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"c%d","amount":1500.5,"region":"us"}`, i, i%97)
		default:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"c%d","amount":%d.5,"region":"eu","note":"n%d"}`, i, i%97, i%999, i)
		}
		recs = append(recs, Record{Key: []byte(fmt.Sprintf("c%d", i%97)), Value: []byte(body),
			Headers: map[string]string{"seq": fmt.Sprint(i)}, Timestamp: time.UnixMilli(1700000000000 + int64(i))})
	}
	return recs
}

// OrdersFate says where record seq of OrdersFeed must end: "dlq", "dropped", "big" or "out".
func OrdersFate(seq int) string {
	return [...]string{"dlq", "dropped", "big", "out", "out", "out", "out", "out", "out", "out"}[seq%10]
}

// DeadLettered makes n records as the orders example dead-letters them: keys c0, c1, ...,
// read from partition i%3 of source (and written to partition i%3 of the DLQ), with a trace
// header t-i the source had and the pythia.* headers of a failed parse. The names are spelled
// out rather than taken from package dlq: devbroker depends on franz-go and devkit alone, so
// that the tests of any package, kafkaio's too, can use it; and spelled out, they pin the
// format as the tests' expectations do.
func DeadLettered(n int, source string) []Record {
	recs := make([]Record, 0, n)
	for i := range n {
		recs = append(recs, Record{Key: fmt.Appendf(nil, "c%d", i), Value: fmt.Appendf(nil, `{"order_id":"o%d","amount":"12"}`, i),
			Partition: int32(i % 3), Timestamp: time.Date(2026, 11, 26, 10, 0, i, 0, time.UTC),
			Headers: map[string]string{"trace": fmt.Sprintf("t-%d", i), "pythia.error": "decode json: amount: expected float, got a string",
				"pythia.stage": "parse", "pythia.pipeline": "orders", "pythia.source.topic": source,
				"pythia.source.partition": fmt.Sprint(i % 3), "pythia.source.offset": "0", "pythia.failed_at": "2026-11-26T10:00:00Z"}})
	}
	return recs
}

// Keys are the keys of recs, sorted and joined by commas: which records a topic holds, and
// how often each.
func Keys(recs []Record) string {
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = string(r.Key)
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}
