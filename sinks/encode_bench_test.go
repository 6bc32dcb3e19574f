package sinks

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// BenchmarkEncodeOrders encodes bodies as the orders example's sinks get them: decoded, a
// Raw note, total_cents and region set by its map stage.
func BenchmarkEncodeOrders(b *testing.B) {
	recs := make([]*record.Record, 256)
	for i := range recs {
		value := fmt.Appendf(nil, `{"order_id":"o%d","customer_id":"c%d","amount":%d.5,"region":"eu","note":"%0130d"}`, i, i%97, i%999, i)
		msg, err := record.DecodeJSONReading(value, func(f string) bool { return f == "note" })
		if err != nil {
			b.Fatal(err)
		}
		m := msg.(map[string]any)
		m["total_cents"], m["region"] = float64(i%999*100+50), "EU"
		recs[i] = &record.Record{Value: value, Msg: m, Decoded: true}
	}
	b.ReportAllocs()
	start := cpuTime()
	i := 0
	for b.Loop() {
		if _, err := Encode(recs[i%len(recs)], ""); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportCPU(b, start)
}

// BenchmarkEncodeOrdersLazy is BenchmarkEncodeOrders with lazy bodies as the orders example's
// stages leave them: amount decoded by the schema's check, total_cents and region set.
func BenchmarkEncodeOrdersLazy(b *testing.B) {
	dec := record.NewDecoder(func(f string) bool { return f == "note" }, 5)
	recs := make([]*record.Record, 256)
	for i := range recs {
		value := fmt.Appendf(nil, `{"order_id":"o%d","customer_id":"c%d","amount":%d.5,"region":"eu","note":"%0130d"}`, i, i%97, i%999, i)
		msg, err := dec.DecodeLazy(value)
		if err != nil {
			b.Fatal(err)
		}
		o := msg.(*record.Object)
		amount, _ := o.Get("amount")
		o.Set("amount", amount)
		o.Set("total_cents", float64(i%999*100+50))
		o.Set("region", "EU")
		recs[i] = &record.Record{Value: value, Msg: o, Decoded: true}
	}
	b.ReportAllocs()
	start := cpuTime()
	i := 0
	for b.Loop() {
		if _, err := Encode(recs[i%len(recs)], ""); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportCPU(b, start)
}

// reportCPU reports the process's CPU time per operation since start (cpuTime's): on a shared
// machine, where a benchmark at nice 19 waits for others, wall time per op says little.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
