package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// commitInterval is how often every peer commits in the benchmarks: a run ends when the end
// of the backlog is committed, so the default second would blur a 5-second run by up to 20%.
const commitInterval = 100 * time.Millisecond

// backlog is the number of records each benchmark works through; BENCH_RECORDS overrides it.
func backlog() int { return envInt("BENCH_RECORDS", 1_000_000) }

// startBroker starts the in-process broker, or a real Apache Kafka with BENCH_KAFKA=real.
func startBroker(b *testing.B) *devbroker.Broker {
	start := func() (*devbroker.Broker, error) { return devbroker.Start() }
	if os.Getenv("BENCH_KAFKA") == "real" {
		start = func() (*devbroker.Broker, error) { return devbroker.StartReal(realkafka.Options{}) }
	}
	br, err := start()
	if err != nil {
		b.Fatal(err)
	}
	return br
}

// setup starts a broker with the orders topics and the backlog in `orders`.
func setup(b *testing.B, n int) *devbroker.Broker {
	br := startBroker(b)
	for _, topic := range []string{"orders", "orders-out", "orders-big", "orders-dlq"} {
		if err := br.CreateTopic(topic, partitions()); err != nil {
			b.Fatal(err)
		}
	}
	for from := 0; from < n; from += feedChunk { // in chunks: the feed is not the pipeline's memory
		if err := br.Produce(context.Background(), "orders", ordersFeed(from, min(from+feedChunk, n), recordBytes())); err != nil {
			b.Fatal(err)
		}
	}
	resetPeakRSS()
	return br
}

const feedChunk = 50_000

// resetPeakRSS frees what the setup used and restarts the peak-RSS count (Linux's clear_refs),
// so that the peak a benchmark reports is its run's.
func resetPeakRSS() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// waitCaughtUp waits until group has committed the end of topic. When nothing moves for a
// minute it writes every goroutine's stack to $TMPDIR/pythia-stall-*.txt and fails.
func waitCaughtUp(b *testing.B, br *devbroker.Broker, group, topic string) {
	var last string
	moved := time.Now()
	for !br.CaughtUp(group, topic) {
		if now := fmt.Sprint(br.Committed(group, topic)); now != last {
			last, moved = now, time.Now()
			if os.Getenv("BENCH_PROGRESS") != "" { // the committed offsets as they move: where a run slows
				fmt.Fprintln(os.Stderr, time.Now().Format("15:04:05.000"), "committed", now)
			}
		}
		if time.Since(moved) > time.Minute {
			f, err := os.CreateTemp("", "pythia-stall-*.txt")
			if err == nil {
				_ = pprof.Lookup("goroutine").WriteTo(f, 2)
				f.Close()
			}
			b.Fatalf("no commit for a minute: committed %v of %v; goroutines in %s", br.Committed(group, topic), br.EndOffsets(topic), f.Name())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clock measures a run: its wall time, the CPU time this process spent meanwhile and, on a
// real broker, the broker's.
type clock struct {
	wall           time.Time
	cpu, brokerCPU time.Duration
	broker         *devbroker.Broker
	profile        *os.File
}

type measured struct{ wall, cpu, brokerCPU time.Duration }

// startClock starts measuring; with BENCH_CPUPROFILE=FILE it also profiles the run's CPU,
// with BENCH_BLOCKPROFILE=FILE where its goroutines wait (blockProfile), and with
// BENCH_ALLOCPROFILE=FILE what it allocates (allocProfile).
func startClock(br *devbroker.Broker) clock {
	if os.Getenv("BENCH_BLOCKPROFILE") != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
		runtime.SetMutexProfileFraction(10)
	}
	allocProfile(os.Getenv("BENCH_ALLOCPROFILE"), ".base")
	c := clock{wall: time.Now(), cpu: cpuTime(os.Getpid()), broker: br}
	if br.Real != nil {
		c.brokerCPU = cpuTime(br.Real.PID())
	}
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			c.profile = f
		}
	}
	return c
}

func (c clock) stop() measured {
	m := measured{wall: time.Since(c.wall), cpu: cpuTime(os.Getpid()) - c.cpu}
	if c.broker.Real != nil {
		m.brokerCPU = cpuTime(c.broker.Real.PID()) - c.brokerCPU
	}
	if c.profile != nil {
		pprof.StopCPUProfile()
		c.profile.Close()
	}
	blockProfile(os.Getenv("BENCH_BLOCKPROFILE"))
	allocProfile(os.Getenv("BENCH_ALLOCPROFILE"), "")
	return m
}

// allocProfile writes the heap profile, whose allocations count from the process's start, to
// path+suffix: written at the clock's start (suffix .base) and stop, `go tool pprof
// -sample_index=alloc_space -diff_base FILE.base FILE` shows what the run alone allocated.
func allocProfile(path, suffix string) {
	if path == "" {
		return
	}
	runtime.GC() // the profile counts what was allocated up to the last collection
	writeProfile("heap", path+suffix)
}

// writeProfile writes the runtime's profile name to path, as pprof reads it; a file that
// cannot be made is left unwritten (the profiles are a measurement's aid, not its result).
func writeProfile(name, path string) {
	if f, err := os.Create(path); err == nil {
		_ = pprof.Lookup(name).WriteTo(f, 0)
		f.Close()
	}
}

// blockProfile writes where the run's goroutines waited, and for which locks, to path and
// path.mutex (the runtime sampling an event of each 10 µs waited, a contention of 10).
func blockProfile(path string) {
	if path == "" {
		return
	}
	writeProfile("block", path)
	writeProfile("mutex", path+".mutex")
	runtime.SetBlockProfileRate(0)
	runtime.SetMutexProfileFraction(0)
}

// cpuTime is the user and system CPU time process pid has used so far (/proc), 0 where
// /proc does not say.
func cpuTime(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command (which may hold spaces) start after its ')'.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * time.Second / 100 // clock ticks: USER_HZ is 100 on Linux
}

func report(b *testing.B, n int, t measured) {
	b.ReportMetric(float64(n)/t.wall.Seconds(), "records/s")
	b.ReportMetric(t.wall.Seconds(), "s/backlog")
	b.ReportMetric(float64(t.cpu.Microseconds())/float64(n), "cpu-µs/record")
	if t.brokerCPU > 0 {
		b.ReportMetric(float64(t.brokerCPU.Microseconds())/float64(n), "broker-cpu-µs/record")
	}
	if mb := peakRSS(); mb > 0 {
		b.ReportMetric(mb, "peak-RSS-MB")
		b.ReportMetric(procStatusMB(os.Getpid(), "RssFile:"), "file-RSS-MB") // see BenchmarkOrdersRun
	}
}

// peakRSS is the process's peak resident memory in MB since setup (VmHWM), 0 where /proc
// does not say. It covers the whole process: run one benchmark per process (make bench does)
// and mind that the in-process broker holds the backlog in it too.
func peakRSS() float64 { return vmHWM(os.Getpid()) }

// BenchmarkOrdersPipeline runs pipelines/orders.yaml over the backlog.
func BenchmarkOrdersPipeline(b *testing.B) {
	n := backlog()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := setup(b, n)
		defer br.Close()
		p := ordersPipeline(b, br)
		report(b, n, runPipeline(b, br, p, "orders"))
	}
}

// runPipeline runs p until its group has committed the end of topic, timing that, and stops
// it. With BENCH_HEAPPROFILE=FILE it writes the heap profile at the run's peak there.
func runPipeline(b *testing.B, br *devbroker.Broker, p *pipeline.Pipeline, topic string) measured {
	if path := os.Getenv("BENCH_HEAPPROFILE"); path != "" {
		stopWatch := make(chan struct{})
		defer close(stopWatch)
		go watchHeap(path, stopWatch)
	}
	b.StartTimer()
	began := startClock(br)
	stop := startPipeline(b, br, p)
	waitCaughtUp(b, br, p.KafkaSource().Group, topic)
	took := began.stop()
	b.StopTimer()
	stop()
	return took
}

// BenchmarkHandWrittenSarama is a number to beat: a careful hand-written sarama loop doing the
// orders example's work — decode, filter, reshape, route, dead-letter bad JSON — with an
// idempotent acks=all producer, marking offsets only after the writes are acknowledged.
func BenchmarkHandWrittenSarama(b *testing.B) { benchLoop(b, "hand-written", startSaramaLoop) }

// benchLoop runs a hand-written loop over the backlog, timed as runPipeline times a pipeline:
// from before its client connects until group has committed the end of orders.
func benchLoop(b *testing.B, group string, start func(*testing.B, *devbroker.Broker) (stop func())) {
	n := backlog()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := setup(b, n)
		defer br.Close()
		b.StartTimer()
		began := startClock(br)
		stop := start(b, br)
		waitCaughtUp(b, br, group, "orders")
		took := began.stop()
		b.StopTimer()
		stop()
		report(b, n, took)
	}
}

// startSaramaLoop starts the hand-written sarama loop on orders (group hand-written); the
// function it returns stops it.
func startSaramaLoop(b *testing.B, br *devbroker.Broker) (stop func()) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = commitInterval
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.Producer.Flush.Bytes = 512 << 10
	group, err := sarama.NewConsumerGroup(br.Addrs(), "hand-written", cfg)
	if err != nil {
		b.Fatal(err)
	}
	prod, err := sarama.NewAsyncProducer(br.Addrs(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	h := &handWritten{prod: prod, acks: map[int64]chan struct{}{}}
	go h.dispatchAcks()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{"orders"}, h); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		group.Close()
		prod.Close()
	}
}

type handWritten struct {
	prod sarama.AsyncProducer
	mu   sync.Mutex
	next int64
	acks map[int64]chan struct{}
}

func (h *handWritten) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handWritten) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handWritten) dispatchAcks() {
	for {
		select {
		case m, ok := <-h.prod.Successes():
			if !ok {
				return
			}
			h.ack(m.Metadata.(int64))
		case e, ok := <-h.prod.Errors():
			if !ok {
				return
			}
			panic(e) // the benchmark's broker does not fail writes
		}
	}
}

func (h *handWritten) ack(batch int64) {
	h.mu.Lock()
	ch := h.acks[batch]
	h.mu.Unlock()
	ch <- struct{}{}
}

// ConsumeClaim processes what is available in batches of up to 500, waits for every write of
// the batch to be acknowledged, then marks the batch's last offset.
func (h *handWritten) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	msgs := claim.Messages()
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			batch = append(batch, m)
		case <-sess.Context().Done():
			return nil
		}
	fill:
		for len(batch) < 500 {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		h.mu.Lock()
		id := h.next
		h.next++
		ch := make(chan struct{}, len(batch))
		h.acks[id] = ch
		h.mu.Unlock()
		sent := 0
		for _, m := range batch {
			topic, value := transform(m.Value)
			if topic == "" {
				continue
			}
			h.prod.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(value), Timestamp: m.Timestamp, Metadata: id}
			sent++
		}
		for j := 0; j < sent; j++ {
			<-ch
		}
		h.mu.Lock()
		delete(h.acks, id)
		h.mu.Unlock()
		last := batch[len(batch)-1]
		sess.MarkOffset(last.Topic, last.Partition, last.Offset+1, "")
	}
}

// transform does the orders example's work, for both hand-written loops; "" means filtered out.
func transform(value []byte) (string, []byte) {
	var m map[string]any
	if err := json.Unmarshal(value, &m); err != nil {
		return "orders-dlq", value
	}
	amount, ok := m["amount"].(float64)
	if !ok {
		return "orders-dlq", value
	}
	if amount <= 0 {
		return "", nil
	}
	region, _ := m["region"].(string)
	m["region"] = strings.ToUpper(region)
	m["total_cents"] = float64(int64(amount*100 + 0.5))
	out, _ := json.Marshal(m)
	if amount >= 1000 {
		return "orders-big", out
	}
	return "orders-out", out
}
