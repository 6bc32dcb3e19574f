package bench

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// The paced run: BENCH_RATE records a second (default 20,000) for BENCH_SECONDS (default 15)
// into orders while the consumer under test runs; the outputs of the first latencyWarmup of it
// only warm it up (the group joins, the broker's JIT compiles) and are not counted.
const latencyWarmup = 3 * time.Second

// BenchmarkLatencyPipeline is the end-to-end latency of pipelines/orders.yaml at a steady
// rate: from a record's timestamp, taken as it is produced, to its copy arriving at a reader
// of orders-out and orders-big. It reports p50 and p99.
func BenchmarkLatencyPipeline(b *testing.B) {
	benchLatency(b, false, func(br *devbroker.Broker) func() { return startPipeline(b, br, ordersPipeline(b, br)) })
}

// BenchmarkLatencyHandWrittenSarama is the same for the hand-written sarama loop.
func BenchmarkLatencyHandWrittenSarama(b *testing.B) {
	benchLatency(b, false, func(br *devbroker.Broker) func() { return startSaramaLoop(b, br) })
}

// BenchmarkLatencyHandWrittenFranz is the same for the hand-written franz-go loop.
func BenchmarkLatencyHandWrittenFranz(b *testing.B) {
	benchLatency(b, false, func(br *devbroker.Broker) func() { return startFranzLoop(b, br) })
}

// pacedFeed is what a latency run produces and reads: its feed into in, the topics its
// outputs are read from, how many of the first n records come out, and the broker's setup.
type pacedFeed struct {
	in      string
	outs    []string
	feed    func(from, to, size int) []devbroker.Record
	outputs func(n int) int // nil: unknown, the run ends once its outputs stop coming (quietFor)
	setup   func(*testing.B) *devbroker.Broker
	// since is when an output's latency starts: nil, its timestamp (the record it copies was
	// produced then); ok false leaves it out.
	since func(r *kgo.Record) (at time.Time, ok bool)
	// seconds is the run's length, when not BENCH_SECONDS (default 15).
	seconds func() int
}

// quietFor is how long a run whose outputs are not known waits, once its records are all
// produced, for more outputs before it ends.
const quietFor = 3 * time.Second

// ordersPaced is the orders example's latency run.
var ordersPaced = pacedFeed{in: "orders", outs: []string{"orders-out", "orders-big"}, feed: ordersFeed,
	outputs: func(n int) int {
		outputs := 0
		for seq := range n {
			if fate := devbroker.OrdersFate(seq); fate == "out" || fate == "big" {
				outputs++
			}
		}
		return outputs
	},
	setup: func(b *testing.B) *devbroker.Broker { return setup(b, 0) }}

// benchLatency runs the consumer start starts at the paced rate and measures its outputs'
// latency, as a read_committed reader sees them when committed is set.
func benchLatency(b *testing.B, committed bool, start func(*devbroker.Broker) (stop func())) {
	benchLatencyOf(b, ordersPaced, committed, start)
}

// benchLatencyOf is benchLatency with pf's feed and outputs.
func benchLatencyOf(b *testing.B, pf pacedFeed, committed bool, start func(*devbroker.Broker) (stop func())) {
	rate, seconds := envInt("BENCH_RATE", 20_000), envInt("BENCH_SECONDS", 15)
	if pf.seconds != nil {
		seconds = pf.seconds()
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := pf.setup(b)
		defer br.Close()
		stop := start(br)
		began := time.Now()
		lat := &latencies{committed: committed, topics: pf.outs, since: pf.since, warmed: began}
		ctx, cancel := context.WithCancel(context.Background())
		read := make(chan error, 1)
		go func() { read <- lat.read(ctx, br) }()
		n := producePaced(b, br, pf, rate, time.Duration(seconds)*time.Second)
		var measured durations
		if pf.outputs != nil {
			measured = lat.waitFor(b, pf.outputs(n), time.Minute)
		} else {
			measured = lat.waitQuiet(b, time.Minute)
		}
		cancel()
		<-read
		stop()
		b.ReportMetric(float64(n)/time.Since(began).Seconds(), "records/s")
		b.ReportMetric(measured.percentile(50).Seconds()*1000, "p50-ms")
		b.ReportMetric(measured.percentile(99).Seconds()*1000, "p99-ms")
		b.ReportMetric(float64(len(measured)), "measured")
	}
}

// producePaced produces pf's feed into its topic at rate records a second for d, in slices
// of a millisecond, each record stamped as it is produced; it returns how many.
func producePaced(b *testing.B, br *devbroker.Broker, pf pacedFeed, rate int, d time.Duration) int {
	cl, err := br.Client(kgo.ProducerLinger(0)) // stamped as produced: sent at once
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	began, n := time.Now(), 0
	for now := range tick.C {
		if now.Sub(began) >= d {
			break
		}
		due := int(now.Sub(began).Seconds() * float64(rate))
		for _, r := range pf.feed(n, due, recordBytes()) {
			rec := &kgo.Record{Topic: pf.in, Key: r.Key, Value: r.Value, Timestamp: time.Now(),
				Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(r.Headers["seq"])}}}
			cl.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		n = max(n, due)
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	return n
}

// latencies collects how long each output record took, from its timestamp (or since's
// answer) to its arrival.
type latencies struct {
	committed bool // read as a read_committed reader: records of open transactions wait
	topics    []string
	since     func(*kgo.Record) (time.Time, bool)
	warmed    time.Time // the run's start: the warm-up counts from it
	mu        sync.Mutex
	all       durations // of the outputs whose latency starts after the warm-up
	seen      int
	last      time.Time // when an output last arrived
}

type durations []time.Duration

// read reads the output topics from their start until ctx ends.
func (l *latencies) read(ctx context.Context, br *devbroker.Broker) error {
	opts := []kgo.Opt{kgo.ConsumeTopics(l.topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(10 * time.Millisecond)}
	if l.committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := br.Client(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		l.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			l.seen++
			l.last = now
			at, ok := r.Timestamp, true
			if l.since != nil {
				at, ok = l.since(r)
			}
			if ok && at.Sub(l.warmed) >= latencyWarmup {
				l.all = append(l.all, now.Sub(at))
			}
		})
		l.mu.Unlock()
	}
	return nil
}

// waitFor waits until n records were read, and returns the measured ones.
func (l *latencies) waitFor(b *testing.B, n int, d time.Duration) durations {
	deadline := time.Now().Add(d)
	for {
		l.mu.Lock()
		seen, all := l.seen, slices.Clone(l.all)
		l.mu.Unlock()
		if seen >= n {
			return all
		}
		if time.Now().After(deadline) {
			b.Fatalf("read %d of %d output records in %v", seen, n, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitQuiet waits until no output has come for quietFor (and one has), and returns the
// measured ones.
func (l *latencies) waitQuiet(b *testing.B, d time.Duration) durations {
	deadline := time.Now().Add(d)
	for {
		l.mu.Lock()
		last, all := l.last, slices.Clone(l.all)
		l.mu.Unlock()
		if !last.IsZero() && time.Since(last) >= quietFor {
			return all
		}
		if time.Now().After(deadline) {
			b.Fatalf("outputs still coming, or none, %v after the last record", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d durations) percentile(p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)*p/100, len(d)-1)]
}
