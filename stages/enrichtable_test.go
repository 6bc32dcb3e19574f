package stages_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// fakeTopic is a table topic in memory: partitions of records, followed as they are appended.
type fakeTopic struct {
	mu    sync.Mutex
	parts map[int32][][2][]byte // key, value (nil: a tombstone)
	grew  chan struct{}
	fail  int // Follows that fail at once
}

func newFakeTopic(partitions int32) *fakeTopic {
	f := &fakeTopic{parts: map[int32][][2][]byte{}, grew: make(chan struct{})}
	for p := range partitions {
		f.parts[p] = nil
	}
	return f
}

func (f *fakeTopic) put(p int32, key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var v []byte
	if value != "" {
		v = []byte(value)
	}
	f.parts[p] = append(f.parts[p], [2][]byte{[]byte(key), v})
	close(f.grew)
	f.grew = make(chan struct{})
}

func (f *fakeTopic) Ends(context.Context) (map[int32]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ends := map[int32]int64{}
	for p, recs := range f.parts {
		ends[p] = int64(len(recs))
	}
	return ends, nil
}

func (f *fakeTopic) Follow(ctx context.Context, from map[int32]int64, apply func(int32, int64, []byte, []byte, bool) error) error {
	f.mu.Lock()
	if f.fail > 0 {
		f.fail--
		f.mu.Unlock()
		return errors.New("broker away")
	}
	f.mu.Unlock()
	at := map[int32]int64{}
	for p := range f.parts {
		at[p] = from[p]
	}
	for {
		f.mu.Lock()
		grew := f.grew
		type rec struct {
			p    int32
			o    int64
			k, v []byte
		}
		var todo []rec
		for p, recs := range f.parts {
			for o := at[p]; o < int64(len(recs)); o++ {
				todo = append(todo, rec{p, o, recs[o][0], recs[o][1]})
			}
			at[p] = int64(len(recs))
		}
		f.mu.Unlock()
		for _, r := range todo {
			if err := apply(r.p, r.o, r.k, r.v, false); err != nil {
				return err
			}
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return nil
		}
	}
}

const tableStages = `  - {name: d, type: decode, schema: {id: int, customer: "string?"}}
  - name: cust
    type: enrich
    table:
      topic: customers
      key: msg.customer
      schema: {name: string, tier: string, "since?": int}
      max_wait: 200ms
    into: c
    on_missing: %s
`

func tablePipeline(t *testing.T, onMissing string) *pipeline.Pipeline {
	t.Helper()
	return buildIn(t, t.TempDir(), strings.Replace(tableStages, "%s", onMissing, 1))
}

func openTable(t *testing.T, p *pipeline.Pipeline, topic *fakeTopic) {
	t.Helper()
	u, ok := stages.TableUserOf(p.StageByName("cust").Impl)
	if !ok || u.TableTopic() != "customers" {
		t.Fatal("the enrich is no table user")
	}
	env := stages.TableEnv{Dir: t.TempDir()}
	if topic != nil {
		env.Topic = topic
	}
	if err := u.OpenTable(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
}

func customer(t *testing.T, outs []stages.Output) any {
	t.Helper()
	if len(outs) != 1 {
		t.Fatalf("%d outputs, want 1", len(outs))
	}
	return outs[0].Rec.Msg.(map[string]any)["c"]
}

func counters(p *pipeline.Pipeline) map[string]int64 {
	return p.StageByName("cust").Impl.(stages.Counting).Counters()
}

// The table is read to its end before OpenTable returns; an update and a tombstone reach it
// as the topic changes; a value not of the schema leaves its key out.
func TestTableEnrichFollows(t *testing.T) {
	topic := newFakeTopic(3)
	topic.put(0, "c1", `{"name": "Ada", "tier": "gold"}`)
	topic.put(1, "c2", `{"name": "Bob", "tier": "silver", "since": 2019}`)
	topic.put(2, "c3", `{"name": "Cy", "tier": "bronze"}`)
	topic.put(0, "c1", `{"name": "Ada", "tier": "platinum"}`) // compacted away, some day
	topic.put(2, "bad", `{"name": 7}`)
	topic.fail = 1
	p := tablePipeline(t, "dlq")
	openTable(t, p, topic)
	c := counters(p)
	if c["restoring"] != 0 || c["restored"] != 5 || c["table_keys"] != 3 || c["table_invalid"] != 1 {
		t.Errorf("after the restore: %v", c)
	}

	outs, err := run(t, p, `{"id": 1, "customer": "c1"}`, "d", "cust")
	if err != nil {
		t.Fatal(err)
	}
	if got := customer(t, outs).(map[string]any); got["tier"] != "platinum" {
		t.Errorf("c1 = %v, want its latest value", got)
	}
	topic.put(1, "c2", `{"name": "Bob", "tier": "gold"}`)
	topic.put(2, "c3", "") // a tombstone
	waitUntil(t, func() bool {
		outs, err := run(t, p, `{"id": 2, "customer": "c2"}`, "d", "cust")
		return err == nil && customer(t, outs).(map[string]any)["tier"] == "gold"
	})
	waitUntil(t, func() bool {
		_, err := run(t, p, `{"id": 3, "customer": "c3"}`, "d", "cust")
		return err != nil
	})
	_, err = run(t, p, `{"id": 3, "customer": "c3"}`, "d", "cust")
	var me *stages.MissingError
	if !errors.As(err, &me) || me.Key != "c3" || !strings.Contains(err.Error(), `no key "c3" in table customers`) {
		t.Errorf("a deleted key: %v", err)
	}
	if _, err := run(t, p, `{"id": 4, "customer": "bad"}`, "d", "cust"); !errors.As(err, &me) {
		t.Errorf("a key whose value is not of the schema: %v", err)
	}
	if _, err := run(t, p, `{"id": 5}`, "d", "cust"); err == nil || !strings.Contains(err.Error(), "is null") {
		t.Errorf("a null key: %v", err)
	}
	if c := counters(p); c["lookups"] < 5 || c["misses"] < 3 || c["table_keys"] != 2 || c["table_bytes"] <= 0 {
		t.Errorf("counters %v", c)
	}
}

// eventually polls ok for up to 10 s, for a goroutine of a test (which may not fail it).
func eventually(ok func() bool) {
	for deadline := time.Now().Add(10 * time.Second); !ok() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	if eventually(ok); !ok() {
		t.Fatal("timed out")
	}
}

// on_missing: keep leaves the field out, null sets it to null, drop drops the record, wait
// waits for the key (and goes to the DLQ after max_wait).
func TestTableEnrichOnMissing(t *testing.T) {
	for _, how := range []string{"keep", "null", "drop"} {
		p := tablePipeline(t, how)
		openTable(t, p, newFakeTopic(1))
		outs, err := run(t, p, `{"id": 1, "customer": "nobody"}`, "d", "cust")
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		switch how {
		case "keep":
			if _, has := outs[0].Rec.Msg.(map[string]any)["c"]; has {
				t.Errorf("keep: %v", outs[0].Rec.Msg)
			}
		case "null":
			if v, has := outs[0].Rec.Msg.(map[string]any)["c"]; !has || v != nil {
				t.Errorf("null: %v", outs[0].Rec.Msg)
			}
		case "drop":
			if len(outs) != 0 {
				t.Errorf("drop: %v", outs)
			}
		}
	}

	topic := newFakeTopic(2)
	p := tablePipeline(t, "wait")
	openTable(t, p, topic)
	go func() { // once the record waits for it (the wait below fails the test otherwise)
		eventually(func() bool { return counters(p)["table_waiting"] == 1 })
		topic.put(1, "late", `{"name": "Late", "tier": "new"}`)
	}()
	outs, err := run(t, p, `{"id": 1, "customer": "late"}`, "d", "cust")
	if err != nil || customer(t, outs).(map[string]any)["name"] != "Late" {
		t.Fatalf("wait: %v %v", outs, err)
	}
	began := time.Now()
	_, err = run(t, p, `{"id": 2, "customer": "never"}`, "d", "cust")
	var me *stages.MissingError
	if !errors.As(err, &me) || me.Waited != 200*time.Millisecond || time.Since(began) < 200*time.Millisecond ||
		!strings.Contains(err.Error(), `key "never" did not appear in table customers within max_wait 200ms`) {
		t.Errorf("wait, never: %v after %v", err, time.Since(began))
	}
	// A stop ends the wait with ctx's error: the record is not judged.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.StageByName("cust").Impl.Process(ctx, outsOf(t, p, `{"id": 3, "customer": "never"}`), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("a stopped wait: %v", err)
	}
}

func outsOf(t *testing.T, p *pipeline.Pipeline, body string) *record.Record {
	t.Helper()
	outs, err := run(t, p, body, "d")
	if err != nil {
		t.Fatal(err)
	}
	return outs[0].Rec
}

// In memory (no topic) the table is empty, and a wait does not wait.
func TestTableEnrichInMemory(t *testing.T) {
	p := tablePipeline(t, "wait")
	openTable(t, p, nil)
	began := time.Now()
	_, err := run(t, p, `{"id": 1, "customer": "c1"}`, "d", "cust")
	var me *stages.MissingError
	if !errors.As(err, &me) || time.Since(began) > 100*time.Millisecond {
		t.Errorf("in memory: %v after %v", err, time.Since(began))
	}
}

// The table's schema types the enrichment after the stage; the key is type-checked.
func TestTableEnrichValidate(t *testing.T) {
	p := tablePipeline(t, "null")
	c, _ := p.StageByName("cust").Out.Field("c")
	if c == nil || !c.Optional || c.Kind != expr.Object {
		t.Fatalf("c is %v", c)
	}
	if tier, _ := c.Field("tier"); tier == nil || tier.Kind != expr.String {
		t.Errorf("c.tier is %v", tier)
	}
	p = tablePipeline(t, "wait")
	if c, _ := p.StageByName("cust").Out.Field("c"); c == nil || c.Optional {
		t.Errorf("with wait, c is %v (never missing)", c)
	}

	bad := []struct{ stages, want string }{
		{`  - {name: d, type: decode, schema: {id: int}}
  - {name: cust, type: enrich, table: {topic: customers, key: msg.nope}, into: c}
`, "nope"},
		{`  - {name: d, type: decode, schema: {id: int, tags: [string]}}
  - {name: cust, type: enrich, table: {topic: customers, key: msg.tags}, into: c}
`, "a table key cannot be a"},
		{`  - {name: d, type: decode, schema: {id: int}}
  - {name: cust, type: enrich, key: msg.id, table: {topic: customers, key: msg.id}, into: c}
`, "table.key"},
		{`  - {name: d, type: decode, schema: {id: int}}
  - {name: cust, type: enrich, expr: '{"a": 1}', into: c, on_missing: wait}
`, "only a table lookup"},
		{`  - {name: d, type: decode, schema: {id: int}}
  - {name: cust, type: enrich, table: {topic: customers, key: msg.id}, merge: true, on_missing: null}
`, "with merge"},
		{`  - {name: d, type: decode, schema: {id: int}}
  - {name: cust, type: enrich, table: {topic: customers, key: msg.id, schema: {name: strin}}, into: c}
`, "unknown type"},
		{`  - {name: d, type: decode, schema: {id: int}}
  - {name: cust, type: enrich, table: {topic: customers, key: msg.id, schema: {name: string}}, into: c}
  - {name: m, type: map, set: {n: msg.c.name + 1}}
`, "mismatched types string and int"},
	}
	for _, b := range bad {
		src := "version: 1\nname: t\nsource: {type: kafka, topics: [in]}\nstages:\n" + b.stages + "sinks: [{name: a, type: kafka, topic: a}]\n"
		_, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{Env: func(string) (string, bool) { return "", false }})
		if len(diags) == 0 || !strings.Contains(diags.Err().Error(), b.want) {
			t.Errorf("%s: want an error with %q, got %v", b.stages, b.want, diags.Err())
		}
	}
}

// gatedTopic holds its first Follow until the gate opens: the table is being restored
// meanwhile.
type gatedTopic struct {
	*fakeTopic
	gate chan struct{}
}

func (g *gatedTopic) Follow(ctx context.Context, from map[int32]int64, apply func(int32, int64, []byte, []byte, bool) error) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil
	}
	return g.fakeTopic.Follow(ctx, from, apply)
}

// While the table is restored, the stage counts its partitions as restoring (what /readyz
// and the progress line read), and OpenTable waits; a stop ends the wait.
func TestTableEnrichRestoring(t *testing.T) {
	topic := &gatedTopic{fakeTopic: newFakeTopic(2), gate: make(chan struct{})}
	topic.put(0, "c1", `{"name": "Ada", "tier": "gold"}`)
	topic.put(1, "c2", `{"name": "Bob", "tier": "gold"}`)
	p := tablePipeline(t, "dlq")
	u, _ := stages.TableUserOf(p.StageByName("cust").Impl)
	opened := make(chan error, 1)
	go func() { opened <- u.OpenTable(t.Context(), stages.TableEnv{Dir: t.TempDir(), Topic: topic}) }()
	defer u.Close()
	waitUntil(t, func() bool { return counters(p)["restoring"] == 2 })
	select {
	case err := <-opened:
		t.Fatalf("OpenTable returned before the restore: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(topic.gate)
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	if c := counters(p); c["restoring"] != 0 || c["restored"] != 2 || c["table_keys"] != 2 {
		t.Errorf("after the restore: %v", c)
	}

	// Stopped while restoring: OpenTable returns ctx's error, and Close is still safe.
	p = tablePipeline(t, "dlq")
	u, _ = stages.TableUserOf(p.StageByName("cust").Impl)
	ctx, cancel := context.WithCancel(t.Context())
	blocked := &gatedTopic{fakeTopic: topic.fakeTopic, gate: make(chan struct{})}
	go func() { // once the restore has begun (or not: a restore stopped first fails alike)
		eventually(func() bool { return counters(p)["restoring"] > 0 })
		cancel()
	}()
	if err := u.OpenTable(ctx, stages.TableEnv{Topic: blocked}); !errors.Is(err, context.Canceled) {
		t.Errorf("a stopped restore: %v", err)
	}
	u.Close()
}
