package bench

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// ordersExactlyOnce is ordersPipeline with delivery: exactly_once: it reads, writes and
// commits in transactions, one every commit_interval: its default under exactly_once, 100ms,
// which is also how often the other peers commit (commitInterval).
func ordersExactlyOnce(b *testing.B, br *devbroker.Broker) *pipeline.Pipeline {
	p := ordersPipelineEdited(b, br, func(src []byte) []byte { return withExactlyOnce(b, src) })
	if !p.ExactlyOnce() {
		b.Fatal("the orders pipeline is not exactly-once")
	}
	if d, err := time.ParseDuration(os.Getenv("BENCH_EOS_COMMIT_INTERVAL")); err == nil { // how long a transaction reads
		p.KafkaSource().CommitInterval = d
	}
	return p
}

// withExactlyOnce is the pipeline file src with delivery: exactly_once.
func withExactlyOnce(b *testing.B, src []byte) []byte {
	out := bytes.Replace(src, []byte("\nkafka:"), []byte("\ndelivery: exactly_once\nkafka:"), 1)
	if bytes.Equal(out, src) {
		b.Fatal("the orders pipeline has no kafka block: cannot add delivery: exactly_once")
	}
	return out
}

// BenchmarkOrdersExactlyOnce runs the orders example with delivery: exactly_once over the
// backlog. It ends, as BenchmarkOrdersPipeline does, when the group has committed the end of
// orders: offsets committed in a transaction are seen only once it commits, with the outputs.
func BenchmarkOrdersExactlyOnce(b *testing.B) {
	n := backlog()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := setup(b, n)
		defer br.Close()
		p := ordersExactlyOnce(b, br)
		report(b, n, runPipeline(b, br, p, "orders"))
	}
}

// BenchmarkLatencyExactlyOnce is BenchmarkLatencyPipeline with delivery: exactly_once, read as
// a read_committed reader: a record counts when its transaction has committed.
func BenchmarkLatencyExactlyOnce(b *testing.B) {
	benchLatency(b, true, func(br *devbroker.Broker) func() { return startPipeline(b, br, ordersExactlyOnce(b, br)) })
}
