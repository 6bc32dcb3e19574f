package stages_test

import (
	"errors"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// A value a body cannot hold fails the stage that computed it, naming the field and the
// expression, instead of the sink that cannot encode it.
func TestComputedValuesMustFitABody(t *testing.T) {
	p := build(t, `  - {name: d, type: decode}
  - {name: total, type: map, set: {ok: msg.a + 1, total: msg.a / msg.b}}
  - {name: nan, type: map, set: {ratio: (msg.a - msg.a) / msg.b}}
  - {name: nested, type: map, set: {stats: '{"n": [1, msg.a / msg.b]}'}}
  - {name: groups, type: map, set: {g: 'groupBy([1, 2], # % 2)'}}
  - {name: into, type: enrich, expr: 'msg.a / msg.b', into: risk}
  - {name: merged, type: enrich, expr: '{"r": -msg.a / msg.b}', merge: true}
  - {name: failing, type: map, set: {x: 'msg.a.b'}}
  - {name: negative, type: map, set: {x: '-msg.a / msg.b'}}
  - {name: whole, type: map, value: 'msg.a / msg.b'}
`)
	cases := []struct{ name, stage, body, err string }{
		{"set: a division by zero", "total", `{"a": 1, "b": 0}`, `set total: expression "msg.a / msg.b" computed +Inf (a division by zero?)`},
		{"set: -Inf", "negative", `{"a": 1, "b": 0}`, `set x: expression "-msg.a / msg.b" computed -Inf (a division by zero?)`},
		{"set: 0/0", "nan", `{"a": 0, "b": 0}`, `set ratio: expression "(msg.a - msg.a) / msg.b" computed NaN (zero divided by zero, or arithmetic on an infinity?)`},
		{"set: inside a value", "nested", `{"a": 1, "b": 0}`, `set stats: expression "{\"n\": [1, msg.a / msg.b]}" computed +Inf at .n[1] (a division by zero?)`},
		{"value", "whole", `{"a": 1, "b": 0}`, `value: expression "msg.a / msg.b" computed +Inf (a division by zero?)`},
		{"a map JSON has no form for", "groups", `{"a": 1}`, `set g: expression "groupBy([1, 2], # % 2)" computed map[interface {}][]interface {} (a body cannot hold it)`},
		{"enrich into", "into", `{"a": 1, "b": 0}`, `into risk: expression "msg.a / msg.b" computed +Inf (a division by zero?)`},
		{"enrich merge", "merged", `{"a": 1, "b": 0}`, `merge: expression "{\"r\": -msg.a / msg.b}" computed -Inf at .r (a division by zero?)`},
		{"a runtime error names the field too", "failing", `{"a": 1}`, `set x: expression "msg.a.b": cannot fetch b from int`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, p, c.body, "d", c.stage)
			var fe *stages.FieldError
			if !errors.As(err, &fe) || err.Error() != c.err {
				t.Fatalf("got %v\nwant %s", err, c.err)
			}
			var ue *stages.UnstorableError
			var re *expr.RuntimeError
			if !errors.As(err, &ue) && !errors.As(err, &re) {
				t.Errorf("%T wraps neither an UnstorableError nor a RuntimeError", fe.Err)
			}
		})
	}
	outs, err := run(t, p, `{"a": 1, "b": 4}`, "d", "total", "nested", "into")
	if err != nil || len(outs) != 1 {
		t.Fatalf("finite values: %v %v", outs, err)
	}
	if m := record.Plain(outs[0].Rec.Msg).(map[string]any); m["total"] != 0.25 || m["ok"] != 2 || m["risk"] != 0.25 {
		t.Errorf("body %v", m)
	}
}

// A YAML table can hold .inf and .nan, which a body cannot: the table is refused with the
// line, at validate time.
func TestTableRejectsNonFinite(t *testing.T) {
	dir := t.TempDir()
	writeTable(t, dir, "c.yaml", "- {code: DE, vat: 0.19}\n- {code: FR, vat: .inf}\n")
	src := "version: 1\nname: t\nsource: {type: kafka, topics: [in]}\nstages:\n" +
		"  - {name: d, type: decode}\n  - {name: geo, type: enrich, key: msg.c, file: {path: c.yaml, key_column: code}, into: geo}\n" +
		"sinks: [{name: a, type: kafka, topic: a}]\n"
	_, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{Env: func(string) (string, bool) { return "", false }, BaseDir: dir})
	if len(diags) != 1 || diags[0].Msg != "c.yaml:2: vat is +Inf, which a record body cannot hold" {
		t.Fatalf("got %v", diags.Err())
	}
}
