package bench

// The orders pipeline as the benchmarks load it and run it.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/engine"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/metrics"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// ordersPipeline is pipelines/orders.yaml (or BENCH_PIPELINE's file) on br.
func ordersPipeline(b *testing.B, br *devbroker.Broker) *pipeline.Pipeline {
	return ordersPipelineEdited(b, br, func(src []byte) []byte { return src })
}

// ordersFile is the orders pipeline's file: pipelines/orders.yaml, or BENCH_PIPELINE's.
func ordersFile() string {
	if f := os.Getenv("BENCH_PIPELINE"); f != "" {
		return f
	}
	return "../../pipelines/orders.yaml"
}

// ordersPipelineEdited is ordersPipeline with its text changed by edit before it is parsed.
func ordersPipelineEdited(b *testing.B, br *devbroker.Broker, edit func([]byte) []byte) *pipeline.Pipeline {
	src, err := os.ReadFile(ordersFile())
	if err != nil {
		b.Fatal(err)
	}
	src = edit(src)
	env := func(k string) (string, bool) {
		if k == "KAFKA_BROKERS" {
			return strings.Join(br.Addrs(), ","), true
		}
		return "", false
	}
	p, diags := pipeline.Parse("orders.yaml", src, pipeline.Options{Env: env, BaseDir: "../.."})
	if len(diags) > 0 {
		b.Fatal(diags.Err())
	}
	p.KafkaSource().CommitInterval = commitInterval
	return p
}

// startPipeline runs p on br with its metrics kept; the function it returns stops it. On real
// Kafka the Go runtime is set as pythia-pipe run sets it (KafkaRun.TuneMemory); in process it
// keeps its defaults, as pythia-pipe dev does: the broker's log is in the same heap, and a soft
// limit made for the pipeline alone would have the collector run without end.
func startPipeline(b *testing.B, br *devbroker.Broker, p *pipeline.Pipeline) (stop func()) {
	var logs io.Writer = io.Discard
	if os.Getenv("BENCH_LOG") != "" { // the pipeline's log on stderr: aborts, rebalances, stalls
		logs = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logs, nil))
	run, err := engine.ConnectKafka(p, log)
	if err != nil {
		b.Fatal(err)
	}
	restore := func() {}
	if br.Real != nil {
		restore = run.TuneMemory(log)
	}
	// The metrics, as run keeps them (each sink's latency histogram takes every record); no
	// one scrapes them.
	m := metrics.New(p)
	run.Engine.Observe(m)
	m.Watch(run.Engine, run.Source)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx) }()
	if os.Getenv("BENCH_PROGRESS") == "2" {
		go sampleRun(ctx, run)
	}
	return func() {
		cancel()
		err := <-done
		restore()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// sampleRun prints, every 100 ms, what a run holds: the source's pending records and bytes,
// and each node's counts (BENCH_PROGRESS=2): where records wait.
func sampleRun(ctx context.Context, run *engine.KafkaRun) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		if ctx.Err() != nil {
			return
		}
		ss := run.Source.Stats()
		line := fmt.Sprintf("%s pending=%d bytes=%d", time.Now().Format("15:04:05.000"), ss.Pending, ss.PendingBytes)
		for name, n := range run.Engine.Stats() {
			line += fmt.Sprintf(" %s=%d/%d/%d", name, n.Received, n.Emitted, n.Acked)
		}
		fmt.Fprintln(os.Stderr, line)
	}
}
