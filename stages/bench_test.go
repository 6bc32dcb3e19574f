package stages_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// BenchmarkOrdersStages runs one record at a time through the orders example's stages
// (decode with schema, filter, map, branch), as one worker would.
func BenchmarkOrdersStages(b *testing.B) {
	benchOrders(b, `{name: parse, type: decode, schema: {order_id: string, customer_id: string, amount: float, region: string, "*": any}}`)
}

// BenchmarkOrdersStagesNoSchema is the same without a schema: numbers as decoded, and the
// arithmetic on them checked for int overflow.
func BenchmarkOrdersStagesNoSchema(b *testing.B) {
	benchOrders(b, `{name: parse, type: decode}`)
}

// BenchmarkOrdersEncoded is BenchmarkOrdersStages through to the sinks' encoding, on bodies
// the size of the benchmark backlog's (a note of 130 letters that no expression reads): the
// whole of a record's life in the stages and sinks, less Kafka.
func BenchmarkOrdersEncoded(b *testing.B) {
	bodies := make([][]byte, 1024)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"order_id":"o%d","customer_id":"c%d","amount":%d.5,"region":"eu","note":"%0130d"}`, i, i%97, i%2000, i)
	}
	benchChain(b, `{name: parse, type: decode, schema: {order_id: string, customer_id: string, amount: float, region: string, "*": any}}`, bodies, true)
}

func benchOrders(b *testing.B, decode string) {
	bodies := make([][]byte, 1024)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"order_id":"o-%d","customer_id":"c-%d","amount":%d.5,"region":"eu","note":"x"}`, i, i%97, i%2000)
	}
	benchChain(b, decode, bodies, false)
}

func benchChain(b *testing.B, decode string, bodies [][]byte, encode bool) {
	p := build(b, `  - `+decode+`
  - {name: valid, type: filter, when: msg.amount > 0}
  - {name: shape, type: map, set: {total_cents: round(msg.amount * 100), region: upper(msg.region)}}
  - {name: route, type: branch, routes: [{when: msg.amount >= 1000, to: b}, {to: a}]}
`)
	chain := []stages.Stage{}
	for _, n := range []string{"parse", "valid", "shape", "route"} {
		chain = append(chain, p.StageByName(n).Impl)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	defer func() { reportCPU(b, start) }()
	var in, out []stages.Output
	for i := 0; i < b.N; i++ {
		in = append(in[:0], stages.Output{Rec: &record.Record{Value: bodies[i%len(bodies)]}})
		for _, st := range chain {
			out = out[:0]
			for _, o := range in {
				var err error
				if out, err = st.Process(ctx, o.Rec, out); err != nil {
					b.Fatal(err)
				}
			}
			in, out = out, in
		}
		for _, o := range in {
			if !encode {
				break
			}
			if _, err := sinks.Encode(o.Rec, ""); err != nil {
				b.Fatal(err)
			}
		}
	}
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
