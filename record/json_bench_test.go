package record

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// ordersBodies are bodies like the benchmark backlog's (internal/bench): the orders
// example's fields and a note of about 130 letters that no expression reads.
func ordersBodies() [][]byte {
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"order_id":"o%d","customer_id":"c%d","amount":%d.5,"region":"eu","note":"%0130d"}`, i, i%97, i%999, i)
	}
	return bodies
}

// BenchmarkDecodeOrders decodes orders bodies as the orders example's decode stage does
// (a Decoder; note unread, so kept as a Raw).
func BenchmarkDecodeOrders(b *testing.B) {
	dec := NewDecoder(func(field string) bool { return field == "note" }, 4)
	benchDecode(b, dec.Decode)
}

// BenchmarkDecodeOrdersLazy is BenchmarkDecodeOrders with a lazy Object: the body indexed and
// checked, no field decoded.
func BenchmarkDecodeOrdersLazy(b *testing.B) {
	dec := NewDecoder(func(field string) bool { return field == "note" }, 4)
	benchDecode(b, dec.DecodeLazy)
}

// BenchmarkDecodeOrdersCopied is the same with DecodeJSONReading: strings copied.
func BenchmarkDecodeOrdersCopied(b *testing.B) {
	benchDecode(b, func(data []byte) (any, error) {
		return DecodeJSONReading(data, func(field string) bool { return field == "note" })
	})
}

func benchDecode(b *testing.B, decode func([]byte) (any, error)) {
	bodies := ordersBodies()
	b.ReportAllocs()
	start := cpuTime()
	i := 0
	for b.Loop() {
		if _, err := decode(bodies[i%len(bodies)]); err != nil {
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
