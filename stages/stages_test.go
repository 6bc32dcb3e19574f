package stages_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// build makes a pipeline from stage YAML (a list) and returns its stages by name.
func build(t testing.TB, stagesYAML string) *pipeline.Pipeline {
	t.Helper()
	// Unless the stages end in their own branch, a last one sends to both sinks.
	end := "  - {name: end, type: branch, routes: [{when: 'key == \"b\"', to: b}, {to: a}]}\n"
	if strings.Contains(stagesYAML, "type: branch") {
		end = ""
	}
	src := "version: 1\nname: t\nsource: {type: kafka, topics: [in]}\nstages:\n" + stagesYAML + end +
		"sinks: [{name: a, type: kafka, topic: a}, {name: b, type: kafka, topic: b}]\n"
	p, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{Env: func(string) (string, bool) { return "", false }, BaseDir: t.TempDir()})
	if len(diags) > 0 {
		t.Fatalf("invalid test pipeline:\n%v", diags.Err())
	}
	return p
}

// run passes one record with body through the named stages in order, as the engine would
// along port 0, and returns what the last one emitted.
func run(t testing.TB, p *pipeline.Pipeline, body string, names ...string) ([]stages.Output, error) {
	t.Helper()
	rec := &record.Record{Key: []byte("k1"), Value: []byte(body), Topic: "in", Headers: []record.Header{{Key: "h", Value: []byte("v")}}}
	return runRecord(t, p, rec, names...)
}

// runRecord is run with a record of the test's own (a tombstone, a null key).
func runRecord(t testing.TB, p *pipeline.Pipeline, rec *record.Record, names ...string) ([]stages.Output, error) {
	t.Helper()
	outs := []stages.Output{{Rec: rec}}
	for _, n := range names {
		st := p.StageByName(n)
		if st.Impl == nil {
			t.Fatalf("stage %s has no runtime", n)
		}
		var next []stages.Output
		for _, o := range outs {
			var err error
			if next, err = st.Impl.Process(context.Background(), o.Rec, next); err != nil {
				return nil, err
			}
		}
		outs = next
	}
	return outs, nil
}

const decodeOrders = "  - {name: d, type: decode, schema: {id: int, amount: float, region: string, note: 'string?'}}\n"

func TestDecode(t *testing.T) {
	p := build(t, decodeOrders+"  - {name: txt, type: decode, format: text}\n")
	cases := []struct {
		name, body, err string
	}{
		{"valid", `{"id": 1, "amount": 2.5, "region": "eu"}`, ""},
		{"optional present", `{"id": 1, "amount": 2.5, "region": "eu", "note": "x"}`, ""},
		{"bad json", `{"id": 1,`, "decode json: unexpected end of JSON input"},
		{"schema mismatch", `{"id": "one", "amount": 2.5, "region": "eu"}`, "id: expected int, got a string"},
		{"unknown field", `{"id": 1, "amount": 2.5, "region": "eu", "x": 1}`, "x: field not in the schema"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs, err := run(t, p, c.body, "d")
			if c.err != "" {
				var de *stages.DecodeError
				if err == nil || !errors.As(err, &de) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("want DecodeError %q, got %v", c.err, err)
				}
				return
			}
			if err != nil || len(outs) != 1 {
				t.Fatalf("got %v, %v", outs, err)
			}
			m := record.Plain(outs[0].Rec.Msg).(map[string]any)
			if m["id"] != 1 || m["amount"] != 2.5 || !outs[0].Rec.Decoded {
				t.Errorf("decoded %v", m)
			}
		})
	}
	outs, err := run(t, p, "plain words", "txt")
	if err != nil || outs[0].Rec.Msg != "plain words" {
		t.Errorf("text decode: %v, %v", outs, err)
	}
}

func TestFilter(t *testing.T) {
	p := build(t, decodeOrders+"  - {name: f, type: filter, when: msg.amount > 10 && msg.region != \"test\"}\n  - {name: n, type: filter, when: 'msg.note != nil && len(msg.note) > 2'}\n")
	cases := []struct {
		name, body string
		kept       bool
	}{
		{"kept", `{"id": 1, "amount": 20, "region": "eu"}`, true},
		{"too small", `{"id": 1, "amount": 5, "region": "eu"}`, false},
		{"test region", `{"id": 1, "amount": 50, "region": "test"}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs, err := run(t, p, c.body, "d", "f")
			if err != nil || (len(outs) == 1) != c.kept {
				t.Fatalf("outs=%d err=%v, want kept=%v", len(outs), err, c.kept)
			}
		})
	}
	if outs, err := run(t, p, `{"id": 1, "amount": 5, "region": "eu"}`, "d", "n"); err != nil || len(outs) != 0 {
		t.Errorf("nil-safe condition: %v %v", outs, err)
	}
}

func TestMap(t *testing.T) {
	p := build(t, decodeOrders+`  - name: m
    type: map
    set: {cents: round(msg.amount * 100), region: upper(msg.region), was: msg.region}
    drop: [note]
    key: msg.region + "-" + string(msg.id)
    headers: {h: nil, x-id: string(msg.id)}
`)
	outs, err := run(t, p, `{"id": 7, "amount": 1.25, "region": "eu", "note": "n"}`, "d", "m")
	if err != nil || len(outs) != 1 {
		t.Fatalf("%v %v", outs, err)
	}
	r := outs[0].Rec
	m := record.Plain(r.Msg).(map[string]any)
	if m["cents"] != 125.0 || m["region"] != "EU" || m["was"] != "eu" || m["note"] != nil {
		t.Errorf("body %v", m)
	}
	if string(r.Key) != "eu-7" {
		t.Errorf("key %q", r.Key)
	}
	if _, ok := r.Header("h"); ok {
		t.Error("header h should be removed")
	}
	if v, _ := r.Header("x-id"); string(v) != "7" {
		t.Errorf("x-id = %q", v)
	}
	if string(r.Value) != `{"id": 7, "amount": 1.25, "region": "eu", "note": "n"}` {
		t.Error("the consumed bytes must stay as consumed (for the DLQ)")
	}

	p = build(t, decodeOrders+"  - {name: v, type: map, value: '{\"total\": msg.amount, \"id\": msg.id}'}\n  - {name: f, type: filter, when: msg.total > 1}\n")
	outs, err = run(t, p, `{"id": 1, "amount": 3, "region": "x"}`, "d", "v", "f")
	if err != nil || len(outs) != 1 || len(record.Plain(outs[0].Rec.Msg).(map[string]any)) != 2 {
		t.Fatalf("value: %v %v", outs, err)
	}
}

func TestBranch(t *testing.T) {
	routes := `    routes:
      - {when: msg.amount >= 1000, to: a}
      - {when: msg.region == "eu", to: b}
      - {to: a}
`
	cases := []struct {
		name, mode, body string
		ports            []int
	}{
		{"first: first match", "first", `{"id": 1, "amount": 2000, "region": "eu"}`, []int{0}},
		{"first: second match", "first", `{"id": 1, "amount": 5, "region": "eu"}`, []int{1}},
		{"first: default", "first", `{"id": 1, "amount": 5, "region": "us"}`, []int{2}},
		{"all: every match", "all", `{"id": 1, "amount": 2000, "region": "eu"}`, []int{0, 1}},
		{"all: default when none", "all", `{"id": 1, "amount": 5, "region": "us"}`, []int{2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := build(t, decodeOrders+"  - name: r\n    type: branch\n    mode: "+c.mode+"\n"+routes)
			outs, err := run(t, p, c.body, "d", "r")
			if err != nil {
				t.Fatal(err)
			}
			var ports []int
			for _, o := range outs {
				ports = append(ports, o.Port)
			}
			if len(ports) != len(c.ports) || (len(ports) > 0 && ports[0] != c.ports[0]) || (len(ports) > 1 && ports[1] != c.ports[1]) {
				t.Errorf("ports %v, want %v", ports, c.ports)
			}
			if len(outs) == 2 {
				if o, lazy := outs[0].Rec.Msg.(*record.Object); lazy {
					o.Set("region", "changed")
				} else {
					outs[0].Rec.Msg.(map[string]any)["region"] = "changed"
				}
				if record.Plain(outs[1].Rec.Msg).(map[string]any)["region"] == "changed" {
					t.Error("fan-out copies share their body")
				}
			}
		})
	}
	for _, unmatched := range []string{"", ", unmatched: drop"} {
		p := build(t, decodeOrders+"  - {name: r, type: branch"+unmatched+", routes: [{when: msg.amount > 1, to: a}, {when: msg.amount < 0, to: b}]}\n")
		if outs, err := run(t, p, `{"id": 1, "amount": 0, "region": "x"}`, "d", "r"); err != nil || len(outs) != 0 {
			t.Errorf("no route taken%s should drop: %v %v", unmatched, outs, err)
		}
	}
	p := build(t, decodeOrders+"  - {name: r, type: branch, unmatched: dlq, routes: [{when: msg.amount > 1, to: a}, {when: msg.amount < 0, to: b}]}\n")
	if outs, err := run(t, p, `{"id": 1, "amount": 0, "region": "x"}`, "d", "r"); !errors.As(err, new(stages.UnmatchedError)) || len(outs) != 0 {
		t.Errorf("no route taken with unmatched: dlq should fail the record: %v %v", outs, err)
	}
	if outs, err := run(t, p, `{"id": 1, "amount": 5, "region": "x"}`, "d", "r"); err != nil || len(outs) != 1 {
		t.Errorf("a route taken with unmatched: dlq: %v %v", outs, err)
	}
}

func TestRegistryIsComplete(t *testing.T) {
	for _, name := range []string{"decode", "filter", "map", "enrich", "retry", "branch"} {
		typ, ok := stages.Registry()[name]
		if !ok || typ.Build == nil || len(typ.Fields) == 0 || typ.Doc == "" {
			t.Errorf("stage type %s missing or incomplete", name)
		}
	}
}

// A map changes nothing until all its expressions ran, every one of which reads the record
// as it came in; a value that holds the body itself does not make the body hold itself.
func TestMapAllOrNothing(t *testing.T) {
	p := build(t, `  - {name: d, type: decode}
  - {name: m, type: map, set: {a: msg.a + 1, b: msg.a * 10, c: msg.n / msg.zero}}
  - {name: self, type: map, set: {copy: msg, a: 2}}
`)
	rec := &record.Record{Value: []byte(`{"a": 1, "n": 1, "zero": 0}`)}
	if _, err := p.StageByName("d").Impl.Process(context.Background(), rec, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.StageByName("m").Impl.Process(context.Background(), rec, nil); err == nil {
		t.Fatal("a division by zero should fail the record")
	}
	if got := record.Plain(rec.Msg).(map[string]any); got["a"] != 1 || got["b"] != nil {
		t.Fatalf("a failed map changed the body: %v", got)
	}
	outs, err := p.StageByName("self").Impl.Process(context.Background(), rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := record.Plain(outs[0].Rec.Msg).(map[string]any)
	inner, _ := body["copy"].(map[string]any)
	if body["a"] != 2 || inner["a"] != 1 || inner["copy"] != nil {
		t.Fatalf("body %v", body)
	}
}

// An optional nested object (`after?: {...}`) is null or missing in some records, and checked
// field by field in the others, whether an expression reads it or not (before is not read:
// decode checks it without building it).
func TestDecodeOptionalObject(t *testing.T) {
	p := build(t, "  - name: d\n    type: decode\n    schema:\n      op: string\n      before?: {id: int}\n      after?:\n        id: int\n        tags?: [string]\n"+
		"  - {name: f, type: filter, when: 'msg.after != nil && msg.after.id > 1'}\n")
	cases := []struct {
		name, body string
		passes     bool
		err        string
	}{
		{"a create: before null", `{"op": "c", "before": null, "after": {"id": 2}}`, true, ""},
		{"a delete: after null", `{"op": "d", "before": {"id": 2}, "after": null}`, false, ""},
		{"both missing", `{"op": "r"}`, false, ""},
		{"an optional list inside", `{"op": "u", "after": {"id": 3, "tags": ["a"]}}`, true, ""},
		{"a field of after checked", `{"op": "c", "after": {"id": "two"}}`, false, "after.id: expected int, got a string"},
		{"a field of before checked", `{"op": "u", "before": {"id": "two"}, "after": {"id": 2}}`, false, "before.id: expected int, got a string"},
		{"after not an object", `{"op": "c", "after": 2}`, false, "after: expected object, got a number"},
		{"an unknown field inside", `{"op": "c", "after": {"id": 2, "x": 1}}`, false, "after.x: field not in the schema"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs, err := run(t, p, c.body, "d", "f")
			switch {
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("want the error %q, got %v", c.err, err)
				}
			case err != nil:
				t.Fatal(err)
			case (len(outs) == 1) != c.passes:
				t.Fatalf("passed the filter: %v, want %v", len(outs) == 1, c.passes)
			}
		})
	}
	if got := p.StageByName("f").In.String(); got != "{after: {id: int, tags: [string]?}?, before: {id: int}?, op: string}" {
		t.Errorf("the filter sees %s", got)
	}
}
