package bench

// The stateful stages against Kafka Streams (issue 28's "Speed, beside Kafka Streams"):
// testdata/dedupe.yaml and testdata/aggregate.yaml, and streams/StateStreams.java doing the
// same, over backlogs of their own; their latency at a steady rate; the dedupe's restore from
// its changelog and its memory as its keys grow (restore_test.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// A stateful benchmark: its pipeline file, the topic it reads and those it writes, its feed
// and the Kafka Streams topology doing the same work.
type stateBench struct {
	file     string // under testdata/
	in       string
	outs     []string
	group    string                                      // the pipeline's
	feed     func(from, to, size int) []devbroker.Record // records from..to-1 of the feed
	outputs  func(n int) int                             // how many of the first n records come out, when known at once
	topology string                                      // StateStreams' argument; its group is topology+"-streams"
	records  string                                      // the variable setting its backlog instead of BENCH_RECORDS
}

// backlog is how many records sb's throughput benchmarks work through.
func (sb stateBench) backlog() int { return envInt(sb.records, backlog()) }

var (
	dedupeBench = stateBench{file: "testdata/dedupe.yaml", in: "payments", outs: []string{"payments-once"}, group: "bench-dedupe",
		feed: paymentsFeed, outputs: func(n int) int { return n - n/5 }, topology: "dedupe"}
	aggregateBench = stateBench{file: "testdata/aggregate.yaml", in: "orders-by-customer", outs: []string{"orders-per-minute"},
		group: "bench-aggregate", feed: customerOrdersFeed, topology: "aggregate", records: "BENCH_AGG_RECORDS"}
)

// paymentsFeed is records from..to-1 of the dedupe benchmark's feed: payments keyed by payment
// id, a fifth of them (every fifth record) repeating an earlier id — half of those one of the
// last twenty records', half any earlier record's — with values padded to size bytes,
// stamped a millisecond apart (all within the dedupe's hour).
func paymentsFeed(from, to, size int) []devbroker.Record {
	recs := make([]devbroker.Record, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		id := i
		if i%5 == 4 { // a duplicate of an earlier record that was not one (i-1-5k ≡ 3, 5k ≡ 0 mod 5)
			h := uint64(i) * 0x9E3779B97F4A7C15
			if (i/5)%2 == 0 {
				id = max(i-1-5*int(h>>60%4), 3)
			} else {
				id = 5 * int(h>>20%uint64(i/5+1))
			}
		}
		recs = append(recs, paymentRecord(i, id, size))
	}
	return recs
}

// distinctFeed is records from..to-1 of a feed of distinct payment ids (the restore and
// memory benchmarks'), ten a millisecond: 10M of them are 1,000 s, so that none expires
// within the dedupe's hour and the store holds them all.
func distinctFeed(from, to, size int) []devbroker.Record {
	recs := make([]devbroker.Record, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		r := paymentRecord(i, i, size)
		r.Timestamp = time.UnixMilli(1700000000000 + int64(i/10))
		recs = append(recs, r)
	}
	return recs
}

func paymentRecord(seq, id, size int) devbroker.Record {
	key := fmt.Sprintf("pay-%09d", id)
	body := fmt.Sprintf(`{"payment_id":%q,"amount":%d.25,"note":"%%s"}`, key, seq%9999)
	body = fmt.Sprintf(body, note(seq, max(size-len(body)+2, 1)))
	return devbroker.Record{Key: []byte(key), Value: []byte(body), Headers: map[string]string{"seq": strconv.Itoa(seq)},
		Timestamp: time.UnixMilli(1700000000000 + int64(seq))}
}

// customerOrdersFeed is records from..to-1 of the aggregate benchmark's feed: orders keyed by
// their customer (10,007 of them), all valid, stamped a millisecond apart, a seventh of them
// up to 5 s early (out of order, within the 10 s grace): 1M records are about 17 minutes of
// event time, 17 windows a customer.
func customerOrdersFeed(from, to, size int) []devbroker.Record {
	recs := make([]devbroker.Record, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		customer := fmt.Sprintf("c%d", i%10007)
		body := fmt.Sprintf(`{"order_id":"o%d","customer_id":"%s","amount":%d.5,"region":"eu","note":"%%s"}`, i, customer, i%999)
		body = fmt.Sprintf(body, note(i, max(size-len(body)+2, 1)))
		ts := int64(1700000000000 + i)
		if i%7 == 0 {
			ts -= int64(i*7919) % 5000
		}
		recs = append(recs, devbroker.Record{Key: []byte(customer), Value: []byte(body),
			Headers: map[string]string{"seq": strconv.Itoa(i)}, Timestamp: time.UnixMilli(ts)})
	}
	return recs
}

// setupState starts a broker with sb's topics and n records of its feed in its input.
func setupState(b *testing.B, sb stateBench, n, size int) *devbroker.Broker {
	br := startBroker(b)
	for _, topic := range append([]string{sb.in}, sb.outs...) {
		if err := br.CreateTopic(topic, partitions()); err != nil {
			b.Fatal(err)
		}
	}
	for from := 0; from < n; from += feedChunk {
		if err := br.Produce(context.Background(), sb.in, sb.feed(from, min(from+feedChunk, n), size)); err != nil {
			b.Fatal(err)
		}
	}
	resetPeakRSS()
	return br
}

// statePipeline is sb's pipeline file on br, its stores under a new temporary folder.
func statePipeline(b *testing.B, br *devbroker.Broker, sb stateBench) *pipeline.Pipeline {
	src, err := os.ReadFile(sb.file)
	if err != nil {
		b.Fatal(err)
	}
	if w := os.Getenv("BENCH_DEDUPE_WITHIN"); w != "" { // keys expire as the backlog goes (1h: none does)
		src = []byte(strings.Replace(string(src), "within: 1h", "within: "+w, 1))
	}
	dir := b.TempDir()
	env := func(k string) (string, bool) {
		switch k {
		case "KAFKA_BROKERS":
			return strings.Join(br.Addrs(), ","), true
		case "STATE_DIR":
			return dir, true
		}
		return "", false
	}
	p, diags := pipeline.Parse(sb.file, src, pipeline.Options{Env: env, BaseDir: "../.."})
	if len(diags) > 0 {
		b.Fatal(diags.Err())
	}
	p.KafkaSource().CommitInterval = commitInterval
	if w := os.Getenv("BENCH_WORKERS"); w != "" { // the stateful stages' workers (their files say 1)
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_WORKERS=%q: want a count of workers", w)
		}
		for _, st := range p.Stateful() {
			st.Workers = n
		}
	}
	return p
}

// benchStatePipeline runs sb's pipeline over a backlog of its feed.
func benchStatePipeline(b *testing.B, sb stateBench) {
	n := sb.backlog()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := setupState(b, sb, n, recordBytes())
		defer br.Close()
		report(b, n, runPipeline(b, br, statePipeline(b, br, sb), sb.in))
		reportOutputs(b, br, sb)
	}
}

// reportOutputs reports how many records sb's outputs hold: the same for both peers, or
// they did not do the same work.
func reportOutputs(b *testing.B, br *devbroker.Broker, sb stateBench) {
	var n int64
	for _, topic := range sb.outs {
		for _, end := range br.EndOffsets(topic) {
			n += end
		}
	}
	b.ReportMetric(float64(n), "outputs")
}

// benchStateStreams runs Kafka Streams' sb topology over the same backlog, as
// BenchmarkKafkaStreams runs the orders one.
func benchStateStreams(b *testing.B, sb stateBench) {
	n := sb.backlog()
	group := sb.topology + "-streams"
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		classpath := streamsApp(b)
		br := setupState(b, sb, n, recordBytes())
		defer br.Close()
		jvm := startStreamsApp(b, classpath, "local.bench.StateStreams", strings.Join(br.Addrs(), ","), sb.topology, b.TempDir())
		defer jvm.kill()
		b.StartTimer()
		began, jvmCPU := startClock(br), cpuTime(jvm.pid())
		jvm.waitCommit(b, br, group, sb.in)
		waitCaughtUp(b, br, group, sb.in)
		took := began.stop()
		took.cpu = cpuTime(jvm.pid()) - jvmCPU
		peak := vmHWM(jvm.pid())
		b.StopTimer()
		jvm.stop(b)
		report(b, n, took)
		b.ReportMetric(peak, "peak-RSS-MB")
		b.ReportMetric(jvm.boot.Seconds(), "jvm-start-s")
		reportOutputs(b, br, sb)
	}
}

// BenchmarkDedupePipeline is testdata/dedupe.yaml over a backlog of payments, a fifth of them
// duplicates.
func BenchmarkDedupePipeline(b *testing.B) { benchStatePipeline(b, dedupeBench) }

// BenchmarkDedupeStreams is Kafka Streams' dedupe (a window store) over the same backlog.
func BenchmarkDedupeStreams(b *testing.B) { benchStateStreams(b, dedupeBench) }

// BenchmarkDedupeStreamsKV is Kafka Streams' dedupe on a key-value store.
func BenchmarkDedupeStreamsKV(b *testing.B) {
	sb := dedupeBench
	sb.topology = "dedupe-kv"
	benchStateStreams(b, sb)
}

// BenchmarkAggregatePipeline is testdata/aggregate.yaml over a backlog of orders keyed by
// customer.
func BenchmarkAggregatePipeline(b *testing.B) { benchStatePipeline(b, aggregateBench) }

// BenchmarkAggregateStreams is Kafka Streams' windowed aggregate (emitStrategy onWindowClose)
// over the same backlog.
func BenchmarkAggregateStreams(b *testing.B) { benchStateStreams(b, aggregateBench) }

// BenchmarkAggregateStreamsSuppress is the same emitting with suppress(untilWindowCloses).
func BenchmarkAggregateStreamsSuppress(b *testing.B) {
	sb := aggregateBench
	sb.topology = "aggregate-suppress"
	benchStateStreams(b, sb)
}

// BenchmarkLatencyDedupePipeline is the end-to-end latency of testdata/dedupe.yaml at a steady
// rate: from a record's timestamp, taken as it is produced, to its arrival in payments-once.
func BenchmarkLatencyDedupePipeline(b *testing.B) {
	benchLatencyOf(b, dedupeBench.paced(), false, func(br *devbroker.Broker) func() {
		return startPipeline(b, br, statePipeline(b, br, dedupeBench))
	})
}

// BenchmarkLatencyDedupeStreams is the same for Kafka Streams' dedupe.
func BenchmarkLatencyDedupeStreams(b *testing.B) {
	classpath := streamsApp(b)
	benchLatencyOf(b, dedupeBench.paced(), false, func(br *devbroker.Broker) func() {
		jvm := startStreamsApp(b, classpath, "local.bench.StateStreams", strings.Join(br.Addrs(), ","), dedupeBench.topology, b.TempDir())
		waitJoined(b, jvm)
		return func() { jvm.stop(b) }
	})
}

// BenchmarkLatencyAggregatePipeline is the latency of testdata/aggregate.yaml's windows at a
// steady rate of orders, each stamped as it is produced (BENCH_AGG_SECONDS, default 75: a
// window closes every minute, 10 s after it ends): from the moment a window could close, its
// end plus grace (then the first record past it comes: its stream time passes it), to its
// output's arrival in orders-per-minute. Every window closing after the warm-up counts
// (10,007 customers: as many windows a minute), read from the output's window_end, which
// both peers write alike.
func BenchmarkLatencyAggregatePipeline(b *testing.B) {
	benchLatencyOf(b, aggregateBench.paced(), false, func(br *devbroker.Broker) func() {
		return startPipeline(b, br, statePipeline(b, br, aggregateBench))
	})
}

// BenchmarkLatencyAggregateStreams is the same for Kafka Streams' aggregate (onWindowClose,
// which looks for windows to close once a second of wall-clock time at most: Streams'
// emit.interval.ms.kstreams.windowed.aggregation, left at its default as a user would).
func BenchmarkLatencyAggregateStreams(b *testing.B) {
	classpath := streamsApp(b)
	benchLatencyOf(b, aggregateBench.paced(), false, func(br *devbroker.Broker) func() {
		jvm := startStreamsApp(b, classpath, "local.bench.StateStreams", strings.Join(br.Addrs(), ","), aggregateBench.topology, b.TempDir())
		waitJoined(b, jvm)
		return func() { jvm.stop(b) }
	})
}

// paced is what a latency run of sb produces and reads.
func (sb stateBench) paced() pacedFeed {
	pf := pacedFeed{in: sb.in, outs: sb.outs, feed: sb.feed, outputs: sb.outputs, setup: func(b *testing.B) *devbroker.Broker { return setupState(b, sb, 0, 0) }}
	if sb.topology == aggregateBench.topology {
		pf.since = windowClosable
		pf.seconds = func() int { return envInt("BENCH_AGG_SECONDS", 75) }
	}
	return pf
}

// aggregateGrace is testdata/aggregate.yaml's grace, and StateStreams' aggregate's.
const aggregateGrace = 10 * time.Second

// windowClosable is when the window an output of the aggregate benchmark carries could close:
// its end plus grace.
func windowClosable(r *kgo.Record) (time.Time, bool) {
	var w struct {
		End time.Time `json:"window_end"`
	}
	if json.Unmarshal(r.Value, &w) != nil || w.End.IsZero() {
		return time.Time{}, false
	}
	return w.End.Add(aggregateGrace), true
}

// waitJoined waits until the app says it is running: its group joined, its tasks assigned
// and restored.
func waitJoined(b *testing.B, jvm *streamsJVM) {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		data, _ := os.ReadFile(jvm.log)
		if strings.Contains(string(data), "\nrunning\n") || strings.HasPrefix(string(data), "running\n") {
			return
		}
		select {
		case <-jvm.done:
			b.Fatalf("the Kafka Streams app exited before running (exit %d); %s:\n%s", jvm.cmd.ProcessState.ExitCode(), jvm.log, tailFile(jvm.log))
		default:
		}
		if time.Now().After(deadline) {
			jvm.kill()
			b.Fatalf("the Kafka Streams app was not running within a minute; %s:\n%s", jvm.log, tailFile(jvm.log))
		}
	}
}
