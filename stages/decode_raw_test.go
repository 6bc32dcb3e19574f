package stages_test

import (
	"context"
	"slices"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// A decode stage keeps as written (record.Raw) exactly the fields that no expression of the
// pipeline reads, wherever the expression is, and that its schema does not check.
func TestDecodeKeepsUnreadFieldsRaw(t *testing.T) {
	const out = "sinks: [{name: o, type: kafka, topic: o}]\n"
	cases := []struct{ name, rest, raw string }{
		{"a filter's condition", "  - {name: f, type: filter, when: msg.a > 0}\n" + out, "bcd"},
		{"a path into a field reads the field", "  - {name: m, type: map, set: {y: msg.c.x}}\n" + out, "abd"},
		{"a map's key and headers", "  - {name: m, type: map, key: string(msg.a), headers: {h: string(msg.b)}}\n" + out, "cd"},
		{"a branch's routes", "  - {name: r, type: branch, routes: [{when: msg.d > 1, to: o}, {to: o}]}\n" + out, "abc"},
		{"a retried stage", "  - {name: r, type: retry, stage: {type: map, set: {y: msg.b}}}\n" + out, "acd"},
		{"an HTTP lookup's request", "  - {name: e, type: enrich, into: z, http: {url: \"'http://127.0.0.1:1/' + string(msg.a)\", method: POST, body: msg.b}}\n" + out, "cd"},
		{"a sink's key", "sinks: [{name: o, type: kafka, topic: o, key: string(msg.b)}]\n", "acd"},
		{"a sink's topic", "sinks: [{name: o, type: kafka, topic_expr: \"'t-' + string(msg.d)\", topic_allow: ['t-*']}]\n", "abc"},
		{"nothing reads the body", out, "abcd"},
		{"the whole body", "  - {name: m, type: map, value: '{\"x\": msg}'}\n" + out, ""},
		{"a field by a computed name", "  - {name: f, type: filter, when: 'msg[string(key)] != nil'}\n" + out, ""},
		{"the body's field names", "  - {name: f, type: filter, when: 'len(keys(msg)) > 0'}\n" + out, ""},
		{"a field's presence", "  - {name: f, type: filter, when: '\"a\" in msg'}\n" + out, ""},
	}
	schemas := []struct{ name, schema, checked string }{
		{"no schema", "", ""},
		{"an open schema checks what it names", `, schema: {b: any, "*": any}`, "b"},
		{"a closed schema checks every field", `, schema: {a: int, b: int, c: any, d: int}`, "abcd"},
	}
	for _, s := range schemas {
		for _, c := range cases {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				src := "version: 1\nname: t\nsource: {type: kafka, topics: [in]}\nstages:\n  - {name: d, type: decode" + s.schema + "}\n" + c.rest
				p, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{Env: func(string) (string, bool) { return "", false }})
				if len(diags) > 0 {
					t.Fatalf("invalid test pipeline:\n%s\n%v", src, diags.Err())
				}
				rec := &record.Record{Key: []byte("a"), Value: []byte(`{"a": 1, "b": 2, "c": {"x": 3}, "d": 4}`)}
				outs, err := p.StageByName("d").Impl.Process(context.Background(), rec, nil)
				if err != nil {
					t.Fatal(err)
				}
				var raw []byte
				for k, v := range record.Plain(outs[0].Rec.Msg).(map[string]any) {
					if _, ok := v.(record.Raw); ok {
						raw = append(raw, k[0])
					}
				}
				slices.Sort(raw)
				want := []byte(c.raw)
				want = slices.DeleteFunc(want, func(f byte) bool { return slices.Contains([]byte(s.checked), f) })
				if string(raw) != string(want) {
					t.Fatalf("kept as written: %q, want %q", raw, want)
				}
			})
		}
	}
}
