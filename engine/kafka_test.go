package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/atleastonce"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/pipeline"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

var waitFor = testproc.WaitFor

// startBroker starts an in-process broker, closed when the test ends, holding topics of the
// given number of partitions.
func startBroker(t *testing.T, partitions int32, topics ...string) *devbroker.Broker {
	t.Helper()
	b, err := devbroker.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	for _, topic := range topics {
		if err := b.CreateTopic(topic, partitions); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func startOrdersBroker(t *testing.T, partitions int32) *devbroker.Broker {
	t.Helper()
	return startBroker(t, partitions, "orders", "orders-out", "orders-big", "orders-dlq")
}

// newSource makes the at-least-once consumer-group source of p.
func newSource(t *testing.T, p *pipeline.Pipeline, log *slog.Logger) *atleastonce.Source {
	t.Helper()
	conn, err := kafkaio.NewFranz(p.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	src, _, err := atleastonce.Open(p.KafkaSource(), conn, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func loadOrders(t *testing.T, b *devbroker.Broker) *pipeline.Pipeline {
	t.Helper()
	src, err := os.ReadFile("../pipelines/orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		if k == "KAFKA_BROKERS" {
			return strings.Join(b.Addrs(), ","), true
		}
		return "", false
	}
	p, diags := pipeline.Parse("orders.yaml", src, pipeline.Options{Env: env, BaseDir: ".."})
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	p.KafkaSource().CommitInterval = 100 * time.Millisecond
	return p
}

// Test 1 of the run issue: 100,000 records through the orders example on the in-process broker.
func TestKafkaOrders100k(t *testing.T) {
	const n = 100_000
	b := startOrdersBroker(t, 3)
	feed := devbroker.OrdersFeed(n)
	ctx := context.Background()
	if err := b.Produce(ctx, "orders", feed); err != nil {
		t.Fatal(err)
	}
	defer verifyNoLeaks(t)()

	p := loadOrders(t, b)
	run, err := ConnectKafka(p, quiet)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run.Run(runCtx) }()
	waitFor(t, 120*time.Second, "the group to commit the end of orders", func() bool { return b.CaughtUp("order-processors", "orders") })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	readCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	outs, err := b.Read(readCtx, "orders-out")
	if err != nil {
		t.Fatal(err)
	}
	bigs, err := b.Read(readCtx, "orders-big")
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := b.Read(readCtx, "orders-dlq")
	if err != nil {
		t.Fatal(err)
	}
	checkOrders(t, feed, outs, bigs, dlq)
	committed, ends := b.Committed("order-processors", "orders"), b.EndOffsets("orders")
	for part, end := range ends {
		if committed[part] != end {
			t.Errorf("partition %d committed %d, log end %d", part, committed[part], end)
		}
	}
}

// Test 5 of the run issue: the output topic refuses writes for a while. Commits advance up to
// the first record waiting for that sink and not past it; once writes succeed again, nothing
// is missing.
func TestKafkaSinkOutage(t *testing.T) {
	b := startOrdersBroker(t, 3)
	var feed []devbroker.Record
	for _, r := range devbroker.OrdersFeed(3000) { // first only records for big: commits can move
		if strings.Contains(string(r.Value), "1500.5") {
			feed = append(feed, r)
		}
	}
	lead := len(feed)
	feed = append(feed, devbroker.OrdersFeed(5000)...)
	for i := range feed {
		feed[i].Headers = map[string]string{"seq": fmt.Sprint(i)}
	}
	ctx := context.Background()
	if err := b.Produce(ctx, "orders", feed); err != nil {
		t.Fatal(err)
	}
	// Where each source record landed, and the first record per partition bound for `out`.
	src, err := b.Read(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	firstOut := map[int32]int64{}
	for _, r := range src {
		var seq int
		fmt.Sscan(r.Headers["seq"], &seq)
		if seq >= lead && devbroker.OrdersFate(seq-lead) == "out" {
			if cur, ok := firstOut[r.Partition]; !ok || r.Offset < cur {
				firstOut[r.Partition] = r.Offset
			}
		}
	}
	outage := b.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "orders-out", Err: kerr.NotEnoughReplicas, Count: -1})

	p := loadOrders(t, b)
	run, err := ConnectKafka(p, quiet)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- run.Run(runCtx) }()

	waitFor(t, 60*time.Second, "commits to reach the first record bound for the failing sink", func() bool {
		c := b.Committed("order-processors", "orders")
		for part, first := range firstOut {
			if c[part] != first {
				return false
			}
		}
		return true
	})
	if n := len(mustRead(t, b, "orders-out")); n != 0 {
		t.Fatalf("%d records reached orders-out during the outage", n)
	}
	// The sink has been retrying all along; commits sit right before its first record.
	c := b.Committed("order-processors", "orders")
	for part, first := range firstOut {
		if c[part] > first {
			t.Fatalf("partition %d committed %d, past the unacknowledged record at %d", part, c[part], first)
		}
	}
	outage.Remove()
	waitFor(t, 120*time.Second, "the group to catch up after the outage", func() bool { return b.CaughtUp("order-processors", "orders") })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, topic := range []string{"orders-out", "orders-big", "orders-dlq"} {
		for _, r := range mustRead(t, b, topic) {
			got[r.Headers["seq"]]++
		}
	}
	missing := 0
	for i := range feed {
		if i >= lead && devbroker.OrdersFate(i-lead) == "dropped" {
			continue // filtered
		}
		if got[fmt.Sprint(i)] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d records lost in the outage", missing)
	}
}

func mustRead(t *testing.T, b *devbroker.Broker, topic string) []devbroker.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs, err := b.Read(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// waitingSinks are MemorySinks whose every write first waits for something.
type waitingSinks struct {
	MemorySinks
	wait <-chan struct{} // nil: ready at once
	per  time.Duration   // and then this long per record
}

// slowSinks acknowledge one record per tick of a clock, sinks far slower than the source.
func slowSinks(per time.Duration) *waitingSinks { return &waitingSinks{per: per} }

// gatedSinks hold every write until gate is closed.
func gatedSinks(gate <-chan struct{}) *waitingSinks { return &waitingSinks{wait: gate} }

func (w *waitingSinks) Open(name string, sk sinks.Compiled, report sinks.Report) (sinks.Sink, error) {
	inner, err := w.MemorySinks.Open(name, sk, report)
	return &waitingSink{Sink: inner, w: w}, err
}

type waitingSink struct {
	sinks.Sink
	w *waitingSinks
}

func (s *waitingSink) Write(ctx context.Context, recs []*record.Record) error {
	if s.w.wait != nil {
		select {
		case <-s.w.wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.w.per > 0 {
		select {
		case <-time.After(s.w.per * time.Duration(len(recs))):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Sink.Write(ctx, recs)
}

// Test 6 of the run issue: with a backlog of a million records and a slow sink, what the
// source holds stays bounded by max_pending per partition.
func TestKafkaBackpressure(t *testing.T) {
	const backlog, maxPending = 1_000_000, 2000
	b := startBroker(t, 3, "events")
	if err := b.CreateTopic("events-out", 1); err != nil {
		t.Fatal(err)
	}
	recs := make([]devbroker.Record, backlog)
	for i := range recs {
		recs[i] = devbroker.Record{Key: []byte(fmt.Sprint(i % 1000)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	ctx := context.Background()
	if err := b.Produce(ctx, "events", recs); err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, fmt.Sprintf(`version: 1
name: slow
kafka: {brokers: %s}
source: {type: kafka, topics: [events], max_pending: %d, commit_interval: 100ms}
stages: [{name: d, type: decode}]
sinks: [{name: o, type: kafka, topic: events-out}]
`, strings.Join(b.Addrs(), ","), maxPending))
	src := newSource(t, p, quiet)
	out := slowSinks(200 * time.Microsecond)
	e, err := NewEngine(p, out.Open, quiet)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx, src, 10*time.Second) }()

	// Run until the slow sink has taken many times max_pending: long enough for every
	// partition to fill its ledger and be paused again and again.
	waitFor(t, 120*time.Second, "the sink to take 10 × max_pending records", func() bool {
		s := src.Stats()
		if s.Pending > 3*maxPending {
			t.Fatalf("the source holds %d records, more than 3 partitions × max_pending %d", s.Pending, maxPending)
		}
		return e.Stats()["o"].Acked >= 10*maxPending
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := src.Stats()
	if s.MostPending > maxPending {
		t.Errorf("a partition's ledger held %d records, above max_pending %d", s.MostPending, maxPending)
	}
	if s.MostPending < maxPending/2 {
		t.Errorf("a ledger held at most %d records: the source never came near max_pending %d, so backpressure was not exercised", s.MostPending, maxPending)
	}
	if read := e.Stats()["d"].Received; read > int64(backlog/10) {
		t.Errorf("the pipeline read %d of the %d records: the source did not stop reading", read, backlog)
	}
}

// A fatal produce error (no authorization) stops the pipeline with a clear error, and no
// offset is committed past the record that could not be written.
func TestKafkaFatalSinkError(t *testing.T) {
	b := startOrdersBroker(t, 1)
	feed := devbroker.OrdersFeed(200)
	ctx := context.Background()
	if err := b.Produce(ctx, "orders", feed); err != nil {
		t.Fatal(err)
	}
	b.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "orders-out", Err: kerr.TopicAuthorizationFailed, Count: -1})
	run, err := ConnectKafka(loadOrders(t, b), quiet)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = run.Run(runCtx)
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.At != "sink out" || fe.Outcome != failure.Stop || !strings.Contains(err.Error(), "check its ACLs") {
		t.Fatalf("want the sink's fatal error, got %v", err)
	}
	if runCtx.Err() != nil {
		t.Fatal("the pipeline did not stop by itself")
	}
	// Records 0-2 (dlq, filtered, big) can be done; record 3 is the first bound for out.
	if c := b.Committed("order-processors", "orders")[0]; c > 3 {
		t.Fatalf("committed %d, past the record that could not be written (offset 3)", c)
	}
}

// The clickstream example end to end on the in-process broker: bots filtered, paths tidied,
// the country looked up in the CSV table, purchases and page events routed apart.
func TestKafkaClickstreamEnrich(t *testing.T) {
	b := startBroker(t, 1, "clicks", "clicks-pageviews", "clicks-purchases", "clicks-dlq")
	events := []string{
		`{"event":"page_view","session_id":"s1","path":"/Home/","user_agent":"Mozilla/5.0","country":"DE","ts":"2026-01-01T10:00:00Z"}`,
		`{"event":"page_view","session_id":"s2","path":"/x","user_agent":"Googlebot/2.1","country":"US","ts":"2026-01-01T10:00:00Z"}`,
		`{"event":"purchase","session_id":"s1","path":"/Cart","user_agent":"Mozilla/5.0","country":"FR","ts":"2026-01-01T11:30:00Z"}`,
		`{"event":"add_to_cart","session_id":"s3","path":"/p/1","user_agent":"Mozilla/5.0","ts":"2026-01-01T12:00:00Z"}`,
		`{"event":"page_view","session_id":"s4","path":"/","user_agent":"Mozilla/5.0","country":"DE","ts":"yesterday"}`,
	}
	var feed []devbroker.Record
	for _, e := range events {
		feed = append(feed, devbroker.Record{Value: []byte(e)})
	}
	if err := b.Produce(context.Background(), "clicks", feed); err != nil {
		t.Fatal(err)
	}
	runExample(t, b, "clickstream.yaml", nil)
	views, buys, dlq := mustRead(t, b, "clicks-pageviews"), mustRead(t, b, "clicks-purchases"), mustRead(t, b, "clicks-dlq")
	if len(views) != 2 || len(buys) != 1 || len(dlq) != 1 {
		t.Fatalf("pageviews %d purchases %d dlq %d; want 2 1 1", len(views), len(buys), len(dlq))
	}
	var first map[string]any
	if err := json.Unmarshal(views[0].Value, &first); err != nil {
		t.Fatal(err)
	}
	geo, _ := first["geo"].(map[string]any)
	if first["path"] != "home" || first["hour"] != float64(10) || first["user_agent"] != nil || geo["name"] != "Germany" || geo["vat_rate"] != "0.19" {
		t.Errorf("page view not tidied and enriched: %v", first)
	}
	var second map[string]any
	_ = json.Unmarshal(views[1].Value, &second)
	if second["event"] != "add_to_cart" || second["geo"] != nil {
		t.Errorf("unknown country should go on without geo: %v", second)
	}
	if string(buys[0].Key) != "s1" {
		t.Errorf("purchase key %q, want the session id", buys[0].Key)
	}
	if !strings.Contains(dlq[0].Headers["pythia.error"], "RFC 3339") {
		t.Errorf("dlq error %q", dlq[0].Headers["pythia.error"])
	}
}

// The payments example end to end on the in-process broker: risk scores from a service that
// fails now and then arrive in the records; an account the service always fails for ends in
// the DLQ after its attempts; nothing is lost.
func TestKafkaPaymentsRetry(t *testing.T) {
	var calls sync.Map // account -> calls so far
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		account := r.URL.Query().Get("account")
		n, _ := calls.LoadOrStore(account, new(atomic.Int64))
		switch c := n.(*atomic.Int64).Add(1); {
		case account == "acct-poison":
			http.Error(w, "down", http.StatusServiceUnavailable)
		case c == 1: // every account fails once
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusTooManyRequests)
		default:
			fmt.Fprintf(w, `{"score": %s}`, map[bool]string{true: "0.95", false: "0.1"}[strings.HasSuffix(account, "7")])
		}
	}))
	defer svc.Close()
	b := startBroker(t, 2, "payments", "payments-review", "payments-eur", "payments-usd", "payments-dlq")
	var feed []devbroker.Record
	for i := 0; i < 40; i++ {
		account := fmt.Sprintf("acct-%d", i%8)
		if i == 13 {
			account = "acct-poison"
		}
		currency := map[bool]string{true: "EUR", false: "USD"}[i%2 == 0]
		feed = append(feed, devbroker.Record{Key: []byte(account), Headers: map[string]string{"seq": fmt.Sprint(i)}, Value: []byte(fmt.Sprintf(
			`{"payment_id":"p%d","account_id":%q,"amount":%d.5,"currency":%q,"created_at":"2026-01-01T00:00:00Z","card":{"bin":"4111","country":"DE"}}`,
			i, account, 10+i, currency))})
	}
	if err := b.Produce(context.Background(), "payments", feed); err != nil {
		t.Fatal(err)
	}
	run := runExample(t, b, "payments.yaml", map[string]string{"RISK_URL": svc.URL})
	seen := map[string]string{}
	for _, topic := range []string{"payments-review", "payments-eur", "payments-usd", "payments-dlq"} {
		for _, r := range mustRead(t, b, topic) {
			seen[r.Headers["seq"]] = topic
			if topic == "payments-dlq" {
				if r.Headers["pythia.attempts"] != "5" || r.Headers["pythia.stage"] != "score" {
					t.Errorf("dlq record %s: attempts %s stage %s", r.Headers["seq"], r.Headers["pythia.attempts"], r.Headers["pythia.stage"])
				}
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Fatal(err)
			}
			risk, _ := m["risk"].(map[string]any)
			if risk["score"] == nil || (topic == "payments-review") != (risk["score"] == 0.95) {
				t.Errorf("%s: record %s risk %v", topic, r.Headers["seq"], m["risk"])
			}
		}
	}
	if len(seen) != len(feed) || seen["13"] != "payments-dlq" {
		t.Fatalf("%d of %d records arrived; record 13 in %q", len(seen), len(feed), seen["13"])
	}
	// The poison account's four attempts after its first are retries; an account's one 429
	// may be one too, or be called again uncounted when no other call was answered meanwhile.
	if r := run.Engine.Stats()["score"].Stage["retries"]; r < 4 {
		t.Errorf("retries = %d, want at least the poison account's 4", r)
	}
}

// runExample runs the example pipeline file on the in-process broker b, with env beside
// KAFKA_BROKERS; see runSource.
func runExample(t *testing.T, b *devbroker.Broker, file string, env map[string]string) *KafkaRun {
	t.Helper()
	src, err := os.ReadFile("../pipelines/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return runSource(t, b, file, src, env, "../pipelines")
}

// runSource runs the pipeline src on the in-process broker b, with env beside KAFKA_BROKERS,
// from the earliest offset, until its group has committed the end of its first source topic;
// it returns the run for its stats.
func runSource(t *testing.T, b *devbroker.Broker, name string, src []byte, env map[string]string, baseDir string) *KafkaRun {
	t.Helper()
	vars := map[string]string{"KAFKA_BROKERS": strings.Join(b.Addrs(), ",")}
	for k, v := range env {
		vars[k] = v
	}
	p, diags := pipeline.Parse(name, src, pipeline.Options{Env: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, BaseDir: baseDir})
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	p.KafkaSource().Start, p.KafkaSource().CommitInterval = "earliest", 100*time.Millisecond // the feed is already there
	// Every goroutine of the run ends with it.
	defer verifyNoLeaks(t)()
	run, err := ConnectKafka(p, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx) }()
	topic := p.KafkaSource().Topics[0]
	waitFor(t, 60*time.Second, "the group to commit the end of "+topic, func() bool { return b.CaughtUp(p.KafkaSource().Group, topic) })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return run
}

// verifyNoLeaks fails t when goroutines started since it was called are still running, but
// for the in-process broker's side of connections the run closed: the broker ends those when
// it notices, which under load can take longer than the check waits, and the broker's cleanup
// ends it all.
func verifyNoLeaks(t *testing.T) func() {
	t.Helper()
	opts := []goleak.Option{goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read"),
		goleak.IgnoreTopFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).write")}
	return func() { goleak.VerifyNone(t, opts...) }
}

// checkOrders asserts that the orders example wrote every record of feed exactly once, to
// the sink its fate says, as the example transforms it; the DLQ holds the originals.
func checkOrders(t *testing.T, feed []devbroker.Record, outs, bigs, dlq []devbroker.Record) {
	t.Helper()
	if len(outs) != 7*len(feed)/10 || len(bigs) != len(feed)/10 || len(dlq) != len(feed)/10 {
		t.Fatalf("out %d big %d dlq %d; want %d %d %d", len(outs), len(bigs), len(dlq), 7*len(feed)/10, len(feed)/10, len(feed)/10)
	}
	seen := map[int]bool{}
	check := func(r devbroker.Record, sink string) {
		seq := 0
		fmt.Sscan(r.Headers["seq"], &seq)
		if seen[seq] {
			t.Fatalf("record %d written twice", seq)
		}
		seen[seq] = true
		in := feed[seq]
		if string(r.Key) != string(in.Key) || !r.Timestamp.Equal(in.Timestamp) {
			t.Fatalf("%s: record %d key %q ts %v; want %q %v", sink, seq, r.Key, r.Timestamp, in.Key, in.Timestamp)
		}
		if sink == "dlq" {
			if string(r.Value) != string(in.Value) {
				t.Fatalf("dlq: record %d is not the original bytes: %s", seq, r.Value)
			}
			for h, want := range map[string]string{"pythia.stage": "parse", "pythia.pipeline": "orders", "pythia.source.topic": "orders", "pythia.attempts": "1"} {
				if r.Headers[h] != want {
					t.Fatalf("dlq: record %d header %s = %q, want %q", seq, h, r.Headers[h], want)
				}
			}
			for _, h := range []string{"pythia.error", "pythia.source.partition", "pythia.source.offset", "pythia.source.timestamp", "pythia.failed_at"} {
				if r.Headers[h] == "" {
					t.Fatalf("dlq: record %d lacks header %s", seq, h)
				}
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(r.Value, &m); err != nil {
			t.Fatalf("%s: record %d is not JSON: %v", sink, seq, err)
		}
		var orig map[string]any
		_ = json.Unmarshal(in.Value, &orig)
		amount := orig["amount"].(float64)
		if (sink == "big") != (amount >= 1000) || m["region"] != strings.ToUpper(orig["region"].(string)) ||
			m["total_cents"] != float64(int64(amount*100+0.5)) || m["order_id"] != orig["order_id"] {
			t.Fatalf("%s: record %d = %v from %v", sink, seq, m, orig)
		}
	}
	for _, r := range outs {
		check(r, "out")
	}
	for _, r := range bigs {
		check(r, "big")
	}
	for _, r := range dlq {
		check(r, "dlq")
	}
	for i := range feed {
		if devbroker.OrdersFate(i) == "dropped" && seen[i] {
			t.Fatalf("filtered record %d was written", i)
		}
		if devbroker.OrdersFate(i) != "dropped" && !seen[i] {
			t.Fatalf("record %d is missing", i)
		}
	}
}
