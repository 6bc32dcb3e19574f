package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/twmb/franz-go/pkg/kerr"

	"go.uber.org/goleak"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

var quiet = testLogger()

// testLogger discards the logs of runs, or shows them with PYTHIA_TEST_LOG=1.
func testLogger() *slog.Logger {
	if os.Getenv("PYTHIA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testEnv is the environment every test pipeline sees, whatever the machine's.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{"KAFKA_USER": "alice", "KAFKA_PASSWORD": "s3cret-pw"}[name]
	return v, ok
}

// repoFile reads a file by its path from the repository root.
func repoFile(t testing.TB, rel string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// written is a record's body as its sink writes it, decoded again: what a consumer of the
// output reads (the fields no expression reads are kept as written, as record.Raw).
func written(t *testing.T, r *record.Record) map[string]any {
	t.Helper()
	b, err := sinks.Encode(r, "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := record.DecodeJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v.(map[string]any)
}

func mustParse(t *testing.T, src string) *pipeline.Pipeline {
	t.Helper()
	p, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{Env: testEnv, BaseDir: t.TempDir()})
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	return p
}

// runMemory runs p over records in memory and returns the sinks and the source.
func runMemory(t *testing.T, p *pipeline.Pipeline, recs []*record.Record, fail func(string, *record.Record) error) (*MemorySinks, *MemorySource, *Engine, error) {
	t.Helper()
	out := &MemorySinks{Fail: fail}
	e, err := NewEngine(p, out.Open, quiet)
	if err != nil {
		t.Fatal(err)
	}
	src := &MemorySource{Records: recs, Batch: 7}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = e.Run(ctx, src, 5*time.Second)
	if ctx.Err() != nil {
		t.Fatal("the engine did not finish within 30s")
	}
	return out, src, e, err
}

func orderRecords(n int) []*record.Record {
	var recs []*record.Record
	for i := 0; i < n; i++ {
		var body string
		switch i % 10 {
		case 0:
			body = `{"order_id": "o` + fmt.Sprint(i) + `", "amount": oops}` // bad JSON
		case 1:
			body = fmt.Sprintf(`{"order_id": "o%d", "customer_id": "c%d", "amount": -5, "region": "eu"}`, i, i%7) // filtered
		case 2:
			body = fmt.Sprintf(`{"order_id": "o%d", "customer_id": "c%d", "amount": 2500, "region": "us"}`, i, i%7) // big
		default:
			body = fmt.Sprintf(`{"order_id": "o%d", "customer_id": "c%d", "amount": %d.25, "region": "eu"}`, i, i%7, i%900+1)
		}
		recs = append(recs, &record.Record{Key: []byte(fmt.Sprintf("c%d", i%7)), Value: []byte(body), Topic: "orders",
			Partition: int32(i % 3), Offset: int64(i / 3), Timestamp: time.Unix(1700000000, 0),
			Headers: []record.Header{{Key: "trace", Value: []byte(fmt.Sprint(i))}}})
	}
	return recs
}

func TestEngineOrdersInMemory(t *testing.T) {
	defer goleak.VerifyNone(t)
	src := repoFile(t, "pipelines/orders.yaml")
	p := mustParse(t, string(src))
	out, ms, e, err := runMemory(t, p, orderRecords(1000), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, twice := ms.Settled(); n != 1000 || twice {
		t.Fatalf("settled %d of 1000 (twice: %v)", n, twice)
	}
	outs, bigs, dlq := out.Records("out"), out.Records("big"), out.Records("dlq")
	if len(dlq) != 100 || len(bigs) != 100 || len(outs) != 700 {
		t.Fatalf("out %d big %d dlq %d, want 700 100 100", len(outs), len(bigs), len(dlq))
	}
	for _, r := range outs {
		m := record.Plain(r.Msg).(map[string]any)
		if m["region"] != "EU" || m["total_cents"] == nil || m["amount"].(float64) >= 1000 {
			t.Fatalf("bad output %v", m)
		}
		if v, _ := r.Header("trace"); len(v) == 0 || !strings.HasPrefix(string(r.Key), "c") {
			t.Fatal("key or headers not carried")
		}
	}
	for _, r := range dlq {
		if !strings.Contains(string(r.Value), "oops") {
			t.Fatalf("DLQ record is not the original: %s", r.Value)
		}
		for _, h := range []string{"pythia.error", "pythia.stage", "pythia.pipeline", "pythia.source.topic", "pythia.source.partition",
			"pythia.source.offset", "pythia.source.timestamp", "pythia.attempts", "pythia.failed_at"} {
			if _, ok := r.Header(h); !ok {
				t.Fatalf("DLQ record lacks header %s", h)
			}
		}
		if st, _ := r.Header("pythia.stage"); string(st) != "parse" {
			t.Fatalf("pythia.stage = %s", st)
		}
	}
	s := e.Stats()
	if s["valid"].Dropped != 100 || s["parse"].DeadLettered != 100 || s["out"].Acked != 700 || s["dlq"].Acked != 100 {
		t.Errorf("stats %+v", s)
	}
}

func TestEngineFanOutSettlesOnce(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := mustParse(t, `version: 1
name: fan
source: {type: kafka, topics: [in]}
stages:
  - {name: d, type: decode, format: text, to: [b1, a]}
  - {name: b1, type: branch, mode: all, routes: [{when: 'msg != "x"', to: [a, b]}, {when: 'len(msg) > 0', to: b}]}
sinks: [{name: a, type: kafka, topic: a}, {name: b, type: kafka, topic: b}]
`)
	var recs []*record.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, &record.Record{Value: []byte(fmt.Sprint(i % 3))})
	}
	out, ms, _, err := runMemory(t, p, recs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, twice := ms.Settled(); n != 300 || twice {
		t.Fatalf("settled %d (twice %v)", n, twice)
	}
	// d sends each record to a and to b1; b1 matches both routes: a once more, b twice.
	if a, b := len(out.Records("a")), len(out.Records("b")); a != 600 || b != 600 {
		t.Errorf("a %d b %d, want 600 600", a, b)
	}
}

func TestEngineKeyOrderWithWorkers(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := mustParse(t, `version: 1
name: ordered
source: {type: kafka, topics: [in]}
stages:
  - {name: d, type: decode, format: json, workers: 4}
  - {name: m, type: map, workers: 3, set: {seen: "true"}}
sinks: [{name: o, type: kafka, topic: o}]
`)
	var recs []*record.Record
	for i := 0; i < 5000; i++ {
		recs = append(recs, &record.Record{Key: []byte(fmt.Sprintf("k%d", i%13)), Value: []byte(fmt.Sprintf(`{"n": %d}`, i))})
	}
	out, _, _, err := runMemory(t, p, recs, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int{}
	got := out.Records("o")
	if len(got) != 5000 {
		t.Fatalf("got %d records", len(got))
	}
	for _, r := range got {
		n := written(t, r)["n"].(int) // JSON integers decode to int
		if prev, ok := last[string(r.Key)]; ok && n < prev {
			t.Fatalf("key %s out of order: %v after %v", r.Key, n, prev)
		}
		last[string(r.Key)] = n
	}
}

func TestEngineFailures(t *testing.T) {
	const base = "version: 1\nname: f\nsource: {type: kafka, topics: [in]}\nstages: [{name: d, type: decode}]\nsinks: [{name: o, type: kafka, topic: o}]\n"
	bad := func() []*record.Record {
		return []*record.Record{{Value: []byte(`{"a":1}`)}, {Value: []byte(`{bad`), Topic: "in", Offset: 1}, {Value: []byte(`{"a":2}`)}}
	}
	t.Run("no dlq stops and does not settle the failed record", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		_, ms, _, err := runMemory(t, mustParse(t, base), bad(), nil)
		var se *StageError
		if !errors.As(err, &se) || se.Stage != "d" || se.Offset != 1 || !strings.Contains(err.Error(), "no dlq is configured") {
			t.Fatalf("want a StageError at d, offset 1; got %v", err)
		}
		ms.mu.Lock()
		defer ms.mu.Unlock()
		if ms.settled[1] != 0 {
			t.Error("the failed record was settled")
		}
	})
	t.Run("sink record failure goes to the dlq", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		p := mustParse(t, base+"dlq: {type: kafka, topic: dlq}\n")
		out, ms, _, err := runMemory(t, p, bad(), func(sink string, r *record.Record) error {
			if sink == "o" && strings.Contains(string(r.Value), `"a":2`) {
				return failure.Judge(failure.Produce, "sink o", "o", &sinks.TooLargeError{Topic: "o", Bytes: 2000, Limit: 1000})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := ms.Settled(); n != 3 || len(out.Records("dlq")) != 2 || len(out.Records("o")) != 1 {
			t.Fatalf("settled %d, dlq %d, o %d", n, len(out.Records("dlq")), len(out.Records("o")))
		}
		if st, _ := out.Records("dlq")[1].Header("pythia.stage"); string(st) != "o" && string(st) != "d" {
			t.Errorf("stage header %s", st)
		}
	})
	t.Run("fatal sink error stops the pipeline", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		p := mustParse(t, base+"dlq: {type: kafka, topic: dlq}\n")
		_, ms, _, err := runMemory(t, p, bad(), func(sink string, r *record.Record) error {
			if sink == "o" {
				return failure.Judge(failure.Produce, "sink o", "o", kerr.TopicAuthorizationFailed)
			}
			return nil
		})
		var fe *failure.Error
		if !errors.As(err, &fe) || fe.Outcome != failure.Stop {
			t.Fatalf("want the fatal error, got %v", err)
		}
		if n, _ := ms.Settled(); n != 1 { // only the bad record, dead-lettered
			t.Errorf("settled %d, want 1", n)
		}
	})
}

func TestEngineRefusesStagesWithoutRuntime(t *testing.T) {
	p := mustParse(t, "version: 1\nname: e\nsource: {type: kafka, topics: [in]}\nstages: [{name: x, type: decode}]\nsinks: [{name: o, type: kafka, topic: o}]\n")
	p.Stages[0].Impl = nil // as a stage type without a runtime would leave it
	if _, err := NewEngine(p, (&MemorySinks{}).Open, quiet); err == nil || !strings.Contains(err.Error(), "cannot run yet") {
		t.Fatalf("got %v", err)
	}
}

// gateClock holds every wait until the test opens the gate.
type gateClock struct{ gate chan time.Time }

func (c *gateClock) After(time.Duration) <-chan time.Time { return c.gate }

// A record waiting for its next attempt holds up only its own key: other keys go on, later
// records of its key wait behind it, and once its attempts are spent it goes to the DLQ with
// its attempt count.
func TestEngineRetryKeepsKeyOrderAndGoesOn(t *testing.T) {
	defer goleak.VerifyNone(t)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("id") == "poison" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"id": %q}`, r.URL.Query().Get("id"))
	}))
	defer svc.Close() // before the leak check: the server's own goroutines end here
	p := mustParse(t, `version: 1
name: r
source: {type: kafka, topics: [in]}
stages:
  - {name: d, type: decode, schema: {id: string, n: int}}
  - name: r
    type: retry
    workers: 2
    attempts: 3
    retry_on: [http_5xx]
    stage: {type: enrich, http: {url: '"`+svc.URL+`/?id=" + msg.id', timeout: 2s}, into: got}
sinks: [{name: o, type: kafka, topic: o}]
dlq: {type: kafka, topic: dlq}
`)
	clock := &gateClock{gate: make(chan time.Time)}
	p.StageByName("r").Impl.(interface{ SetClock(stages.Clock) }).SetClock(clock)

	recs := []*record.Record{{Key: []byte("p"), Value: []byte(`{"id": "poison", "n": 0}`)}}
	for i := 1; i <= 50; i++ {
		recs = append(recs, &record.Record{Key: []byte(fmt.Sprintf("k%d", i%5)), Value: []byte(fmt.Sprintf(`{"id": "ok%d", "n": %d}`, i, i))})
	}
	recs = append(recs, &record.Record{Key: []byte("p"), Value: []byte(`{"id": "after", "n": 51}`)})
	out := &MemorySinks{}
	e, err := NewEngine(p, out.Open, quiet)
	if err != nil {
		t.Fatal(err)
	}
	src := &MemorySource{Records: recs, Batch: 10}
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background(), src, 5*time.Second) }()

	waitFor(t, 10*time.Second, "the other keys to pass the waiting record", func() bool { return len(out.Records("o")) == 50 })
	for _, r := range out.Records("o") {
		if string(r.Key) == "p" {
			t.Fatal("a record of the waiting key overtook it")
		}
	}
	close(clock.gate) // let the waits pass: the poison record runs out of attempts
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	dlq, got := out.Records("dlq"), out.Records("o")
	if len(dlq) != 1 || len(got) != 51 || string(got[50].Key) != "p" {
		t.Fatalf("dlq %d, out %d (last key %s)", len(dlq), len(got), got[len(got)-1].Key)
	}
	if a, _ := dlq[0].Header("pythia.attempts"); string(a) != "3" {
		t.Errorf("pythia.attempts = %s, want 3", a)
	}
	if st, _ := dlq[0].Header("pythia.stage"); string(st) != "r" {
		t.Errorf("pythia.stage = %s", st)
	}
	if n, twice := src.Settled(); n != len(recs) || twice {
		t.Errorf("settled %d of %d (twice %v)", n, len(recs), twice)
	}
	if r := e.Stats()["r"].Stage["retries"]; r != 2 {
		t.Errorf("retries = %d, want 2 (the poison record's attempts after the first)", r)
	}
}

// A record an HTTP enrich fails reaches the DLQ with what the service answered, its secrets
// hidden.
func TestEngineDeadLettersWithTheAnswer(t *testing.T) {
	defer goleak.VerifyNone(t)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"amount over limit","api_key":"`+r.URL.Query().Get("token")+`"}`, http.StatusBadRequest)
	}))
	defer svc.Close()
	p := mustParse(t, `version: 1
name: r
source: {type: kafka, topics: [in]}
stages:
  - {name: d, type: decode, schema: {account: int, amount: float}}
  - name: risk
    type: enrich
    http: {url: '"`+svc.URL+`/score?account=" + string(msg.account) + "&amount=" + string(msg.amount) + "&token=t0k3n"'}
    into: risk
sinks: [{name: o, type: kafka, topic: o}]
dlq: {type: kafka, topic: dlq}
`)
	out, _, _, err := runMemory(t, p, []*record.Record{{Topic: "in", Value: []byte(`{"account": 42, "amount": 12.5}`)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dlq := out.Records("dlq")
	if len(dlq) != 1 {
		t.Fatalf("%d records in the DLQ, want 1", len(dlq))
	}
	reason, _ := dlq[0].Header("pythia.error")
	want := "enrich http: " + svc.URL + `/score?account=42&amount=12.5&token=REDACTED answered 400: {"error":"amount over limit","api_key":"REDACTED"}`
	if string(reason) != want {
		t.Errorf("pythia.error reads\n%s\nwant\n%s", reason, want)
	}
	t.Logf("pythia.error: %s", reason)
}

// Abort ends a run at once, even one whose records wait through an outage of their service
// with a long drain ahead: the waiting records give up unfinished, none is dead-lettered.
func TestEngineAbort(t *testing.T) {
	defer goleak.VerifyNone(t)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer svc.Close()
	p := mustParse(t, `version: 1
name: a
source: {type: kafka, topics: [in]}
stages:
  - {name: d, type: decode, schema: {id: string}}
  - {name: e, type: enrich, http: {url: '"`+svc.URL+`/?id=" + msg.id', timeout: 2s, breaker: {failures: 1, cooldown: 1m}}, into: got}
sinks: [{name: o, type: kafka, topic: o}]
dlq: {type: kafka, topic: dlq}
`)
	var recs []*record.Record
	for i := range 20 {
		recs = append(recs, &record.Record{Value: []byte(fmt.Sprintf(`{"id": "r%d"}`, i))})
	}
	out := &MemorySinks{}
	e, err := NewEngine(p, out.Open, quiet)
	if err != nil {
		t.Fatal(err)
	}
	src := &MemorySource{Records: recs, Batch: 5}
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background(), src, time.Hour) }()
	waitFor(t, 10*time.Second, "records waiting for the service", func() bool { return e.Stats()["e"].Stage["waiting"] > 0 })
	e.Abort()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the run went on 10 s after Abort")
	}
	if n, _ := src.Settled(); n != 0 || len(out.Records("dlq")) != 0 || len(out.Records("o")) != 0 {
		t.Errorf("settled %d, dead-lettered %d, written %d: want none", n, len(out.Records("dlq")), len(out.Records("o")))
	}
}
