//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// Delivery modes, as a pipeline file names them.
const (
	atLeastOnce = "at_least_once"
	exactlyOnce = "exactly_once"
)

// records is how many keyed records each run feeds (CHAOS_RECORDS overrides it).
func records() int { return envInt("CHAOS_RECORDS", 500_000) }

// partitions of every topic of a run.
const partitions = 8

// leadIn is how long the pipeline runs on the feed before the fault begins; the feed lasts
// at least minFeed, and at least the fault's length after the lead-in plus tail.
const (
	leadIn  = 10 * time.Second
	minFeed = 40 * time.Second
	tail    = 10 * time.Second
)

// recoverWithin is how soon after the fault clears (and the feed has ended) the group must
// have committed the end of its input: the bound.
const recoverWithin = 60 * time.Second

// run is one scenario in one delivery mode: its topics, its pipeline process, its feed and
// what was seen of it.
type run struct {
	t      *testing.T
	w      *world
	sc     scenario
	mode   string
	prefix string // of its topics and its group
	n      int
	proc   *testproc.Proc
	obs    *observer
	// The fault's span, the feed's end, and when the pipeline was told to stop.
	faultFrom, faultTo, fedAt, termAt time.Time
	notes                             []string // what the fault did, for the report
}

func (r *run) group() string           { return r.prefix }
func (r *run) topic(s string) string   { return r.prefix + "-" + s }
func (r *run) input() string           { return r.topic("orders") }
func (r *run) instanceID() string      { return "chaos-1" }
func (r *run) transactionalID() string { return r.group() + "-" + r.instanceID() }

// note keeps a line for the report about what the fault did.
func (r *run) note(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.t.Log(line)
	r.notes = append(r.notes, line)
}

// runScenario runs sc in mode: topics, the pipeline through the proxies, a feed paced over
// the fault, the fault, the recovery, the checks, the report's row.
func runScenario(t *testing.T, sc scenario, mode string) {
	w := theWorld(t)
	r := &run{t: t, w: w, sc: sc, mode: mode, n: records(),
		prefix: topicName(fmt.Sprintf("chaos-%s-%s-%d", sc.name, map[string]string{atLeastOnce: "alo", exactlyOnce: "eos"}[mode], time.Now().Unix()%100000))}
	for _, s := range []string{"orders", "out", "big", "dlq"} {
		if err := w.b.CreateTopic(r.topic(s), partitions); err != nil {
			t.Fatal(err)
		}
	}
	metricsAddr := freeAddr(t)
	r.proc = testproc.Start(t, binary, r.prefix, []string{"KAFKA_BROKERS=" + strings.Join(w.pipelineAddrs(), ",")},
		"run", "--metrics-addr", metricsAddr, r.pipelineFile())
	r.obs = observe(metricsAddr, 500*time.Millisecond)
	defer r.obs.close()

	feedFor := max(minFeed, leadIn+sc.length+tail)
	ctx, cancel := context.WithTimeout(context.Background(), feedFor+10*time.Minute)
	defer cancel()
	fed := make(chan error, 1)
	began := time.Now()
	go func() { fed <- feedPaced(ctx, w.b, r.input(), r.n, feedFor) }()
	waitUntil(ctx, t, 2*time.Minute, "the pipeline's first commit", func() bool { return sum(w.b.Committed(r.group(), r.input())) > 0 })
	if !hold(ctx, time.Until(began.Add(leadIn))) {
		t.Fatal(ctx.Err())
	}

	r.faultFrom = time.Now()
	sc.fault(ctx, r)
	r.faultTo = time.Now()
	if err := <-fed; err != nil {
		t.Fatalf("feeding %s: %v", r.input(), err)
	}
	r.fedAt = time.Now()
	cleared := r.faultTo
	if r.fedAt.After(cleared) {
		cleared = r.fedAt
	}
	caughtUp := waitCaughtUp(ctx, t, w.b, r.group(), r.input(), cleared.Add(recoverWithin))
	if !r.proc.Running() {
		t.Fatalf("the pipeline stopped on its own during %s", sc.name)
	}
	r.termAt = time.Now()
	r.proc.Signal(t, syscall.SIGTERM)
	if code := r.proc.Wait(t, 90*time.Second); code != 0 {
		t.Fatalf("the pipeline exited %d after SIGTERM", code)
	}
	res := r.verify(ctx)
	res.recovered = caughtUp.Sub(cleared)
	r.signals(&res)
	if sc.expect != nil {
		sc.expect(r, &res)
	}
	record(res)
}

// pipelineFile is the orders example on the run's topics and group, in its delivery mode,
// with a stable instance_id (the transactional id of exactly-once) and a progress line every
// 2 s.
func (r *run) pipelineFile() string {
	src, err := os.ReadFile("../../pipelines/orders.yaml")
	if err != nil {
		r.t.Fatal(err)
	}
	text := string(src)
	for _, edit := range []struct{ from, to string }{
		{"topics: [orders]", "topics: [" + r.input() + "]"},
		{"group: order-processors", "group: " + r.group() + "\n  instance_id: " + r.instanceID()},
		{"topic: orders-out", "topic: " + r.topic("out")},
		{"topic: orders-big", "topic: " + r.topic("big")},
		{"topic: orders-dlq", "topic: " + r.topic("dlq")},
		{"\nkafka:", "\ndelivery: " + r.mode + "\nmetrics: {progress: 2s}\nkafka:"},
	} {
		if !strings.Contains(text, edit.from) {
			r.t.Fatalf("pipelines/orders.yaml changed: %q is not in it", edit.from)
		}
		text = strings.Replace(text, edit.from, edit.to, 1)
	}
	path := filepath.Join(r.t.TempDir(), "orders.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// feedPaced produces the orders feed's first n records into topic, evenly over d, with an
// idempotent acks=all producer that retries until ctx ends: what a fault holds up is
// written late, never lost or twice.
func feedPaced(ctx context.Context, b *devbroker.Broker, topic string, n int, d time.Duration) error {
	cl, err := b.Client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	errs := make(chan error, 1)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			select {
			case errs <- err:
			default:
			}
		}
	}
	began := time.Now()
	const slice = 10 * time.Millisecond
	for sent := 0; sent < n; {
		due := min(n, int(float64(n)*float64(time.Since(began))/float64(d))+1)
		for _, r := range devbroker.OrdersFeedRange(sent, due) {
			rec := &kgo.Record{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
				Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(r.Headers["seq"])}}}
			cl.Produce(ctx, rec, promise)
		}
		sent = due
		select {
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(slice):
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// waitCaughtUp waits until group has committed the end of every partition of topic, at most
// until deadline (the test fails then), and returns when it had.
func waitCaughtUp(ctx context.Context, t *testing.T, b *devbroker.Broker, group, topic string, deadline time.Time) time.Time {
	t.Helper()
	var last string
	waitUntil(ctx, t, time.Until(deadline), "the group to commit the end of "+topic+" (within "+recoverWithin.String()+" of the fault clearing)", func() bool {
		ends, committed := b.EndOffsets(topic), b.Committed(group, topic)
		last = fmt.Sprintf("ends %v, committed %v", ends, committed)
		if len(ends) == 0 {
			return false
		}
		for p, end := range ends {
			if committed[p] != end {
				return false
			}
		}
		return true
	})
	t.Logf("caught up: %s", last)
	return time.Now()
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// freeAddr is a free loopback address for the pipeline's metrics.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape is one /metrics value of the pipeline now (the observer's last sample).
func (r *run) scrape(metric string) float64 {
	r.obs.mu.Lock()
	defer r.obs.mu.Unlock()
	if len(r.obs.samples) == 0 {
		return 0
	}
	return r.obs.samples[len(r.obs.samples)-1].metrics[metric]
}

// envInt is the integer in environment variable name, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
