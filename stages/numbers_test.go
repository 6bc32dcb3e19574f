package stages_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// Numbers come out of decode and a sink's JSON encoding as they went in, whatever the
// schema leaves open. A field no expression reads is written as it came (record.Raw); one
// the schema names is decoded and encoded again, in Go's float format.
func TestDecodeKeepsNumbers(t *testing.T) {
	schemas := map[string]struct {
		stage string
		raw   bool // n is kept as written
	}{
		"no schema":   {"{name: d, type: decode}", true},
		"schema any":  {"{name: d, type: decode, schema: any}", true},
		"open schema": {`{name: d, type: decode, schema: {"*": any}}`, true},
		"field any":   {`{name: d, type: decode, schema: {n: any, "*": any}}`, false},
	}
	cases := []struct{ name, body, want, wantRaw string }{
		{"2^53 + 1", `{"n": 9007199254740993}`, `{"n":9007199254740993}`, ""},
		{"beyond int64", `{"n": 12345678901234567890}`, `{"n":12345678901234567890}`, ""},
		{"int64 min", `{"n": -9223372036854775808}`, `{"n":-9223372036854775808}`, ""},
		{"beyond float64 is kept as written", `{"n": 1e400}`, `{"n":1e400}`, ""},
		{"a tenth", `{"n": 0.1}`, `{"n":0.1}`, ""},
		{"large float, same value", `{"n": 1.5e300}`, `{"n":1.5e+300}`, `{"n":1.5e300}`},
		{"nested in objects and lists", `{"n": {"a": [9007199254740993, {"b": 12345678901234567890}], "c": [-9223372036854775808, 0.1]}}`,
			`{"n":{"a":[9007199254740993,{"b":12345678901234567890}],"c":[-9223372036854775808,0.1]}}`, ""},
	}
	for sname, schema := range schemas {
		p := build(t, "  - "+schema.stage+"\n")
		for _, c := range cases {
			t.Run(sname+"/"+c.name, func(t *testing.T) {
				outs, err := run(t, p, c.body, "d")
				if err != nil {
					t.Fatal(err)
				}
				if _, raw := record.Plain(outs[0].Rec.Msg).(map[string]any)["n"].(record.Raw); raw != schema.raw {
					t.Fatalf("n kept as written: %v, want %v", raw, schema.raw)
				}
				want := c.want
				if schema.raw && c.wantRaw != "" {
					want = c.wantRaw
				}
				got, err := sinks.Encode(outs[0].Rec, "")
				if err != nil || string(got) != want {
					t.Fatalf("encoded %s, %v; want %s", got, err, want)
				}
			})
		}
	}
}

// A schema's int and float fields take the numbers DecodeJSON gives, and refuse the ones
// they cannot hold instead of rounding or wrapping them.
func TestDecodeSchemaNumbers(t *testing.T) {
	p := build(t, "  - {name: i, type: decode, schema: {n: int}}\n  - {name: f, type: decode, schema: {n: float}}\n")
	cases := []struct{ name, stage, body, want, err string }{
		{"int: 2^53 + 1 exact", "i", `{"n": 9007199254740993}`, `{"n":9007199254740993}`, ""},
		{"int: int64 min", "i", `{"n": -9223372036854775808}`, `{"n":-9223372036854775808}`, ""},
		{"int: whole float", "i", `{"n": 1e3}`, `{"n":1000}`, ""},
		{"int: beyond int64", "i", `{"n": 12345678901234567890}`, "", "n: expected int, got 12345678901234567890, out of range (-9223372036854775808 to 9223372036854775807)"},
		{"int: beyond float64", "i", `{"n": 1e400}`, "", "n: expected int, got 1e400, out of range"},
		{"int: fraction", "i", `{"n": 2.5}`, "", "n: expected int, got a number with a fraction (2.5)"},
		{"int: float beyond 2^53", "i", `{"n": 1e17}`, "", "n: expected int, got 1e+17, a float beyond 2^53"},
		{"int: a string", "i", `{"n": "3"}`, "", "n: expected int, got a string"},
		{"float: an int", "f", `{"n": 3}`, `{"n":3}`, ""},
		{"float: a tenth", "f", `{"n": 0.1}`, `{"n":0.1}`, ""},
		{"float: beyond int64 rounds", "f", `{"n": 12345678901234567890}`, `{"n":12345678901234567000}`, ""},
		{"float: beyond float64", "f", `{"n": 1e400}`, "", "n: expected float, got 1e400, outside the range of a float"},
		{"float: below float64", "f", `{"n": 1e-400}`, "", "n: expected float, got 1e-400, outside the range of a float"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs, err := run(t, p, c.body, c.stage)
			if c.err != "" {
				var de *stages.DecodeError
				if !errors.As(err, &de) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("want DecodeError %q, got %v", c.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := sinks.Encode(outs[0].Rec, "")
			if err != nil || string(got) != c.want {
				t.Fatalf("encoded %s, %v; want %s", got, err, c.want)
			}
		})
	}
}

// Expressions compute with the numbers decode gives: int, float64, and json.Number (an
// integer beyond int64), which arithmetic refuses rather than get wrong.
func TestNumbersInExpressions(t *testing.T) {
	p := build(t, `  - {name: d, type: decode}
  - name: m
    type: map
    set: {pos: msg.n > 0, double: msg.n * 2, three: msg.n == 3, half: msg.n / 2, cents: int(msg.n * 100)}
`)
	cases := []struct{ name, body, want, err string }{
		{"int", `{"n": 3}`, `{"cents":300,"double":6,"half":1.5,"n":3,"pos":true,"three":true}`, ""},
		{"float", `{"n": 2.5}`, `{"cents":250,"double":5,"half":1.25,"n":2.5,"pos":true,"three":false}`, ""},
		{"2^53 + 1 stays exact", `{"n": 9007199254740993}`, `{"cents":900719925474099300,"double":18014398509481986,"half":4503599627370496,"n":9007199254740993,"pos":true,"three":false}`, ""},
		{"int arithmetic beyond int64", `{"n": 100000000000000000}`, "", `set cents: expression "int(msg.n * 100)": integer overflow: 100000000000000000 * 100 is beyond int64`},
		{"beyond int64 refuses arithmetic", `{"n": 12345678901234567890}`, "", `set pos: expression "msg.n > 0": invalid operation: json.Number > int`},
		{"int() of a float beyond int64", `{"n": 1.5e300}`, "", `set cents: expression "int(msg.n * 100)": int(1.5000000000000001e+302): out of int's range`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs, err := run(t, p, c.body, "d", "m")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("want an error with %q, got %v", c.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := sinks.Encode(outs[0].Rec, "")
			if string(got) != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

// A JSON body that is not UTF-8 is an error naming where, not a record quietly changed.
func TestDecodeInvalidUTF8(t *testing.T) {
	p := build(t, "  - {name: d, type: decode}\n  - {name: txt, type: decode, format: text}\n")
	cases := []struct{ name, stage, body, err string }{
		{"latin-1 byte", "d", "{\"name\": \"caf\xe9\"}", "decode json: invalid UTF-8 at byte 13"},
		{"cut sequence", "d", "{\"a\": \"\xe2\x82\"}", "decode json: invalid UTF-8 at byte 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, p, c.body, c.stage)
			var de *stages.DecodeError
			if !errors.As(err, &de) || err.Error() != c.err || !errors.Is(err, record.ErrInvalidUTF8) {
				t.Fatalf("want DecodeError %q wrapping ErrInvalidUTF8, got %v", c.err, err)
			}
		})
	}
	// Text is bytes as they came: nothing to check, nothing changed.
	outs, err := run(t, p, "caf\xe9", "txt")
	if err != nil || outs[0].Rec.Msg != "caf\xe9" {
		t.Fatalf("text: %v %v", outs, err)
	}
}

// Lookup tables read JSON as decode does: numbers as written, keys matching the records'.
// Their mistakes name the line.
func TestTableJSON(t *testing.T) {
	dir := t.TempDir()
	writeTable(t, dir, "ok.jsonl", `{"id": 12345678901234567890, "n": 9007199254740993}`+"\n"+`{"id": 7, "n": 0.1}`+"\n")
	p := buildIn(t, dir, "  - {name: d, type: decode}\n  - {name: e, type: enrich, key: msg.id, file: {path: ok.jsonl, key_column: id}, into: row}\n")
	for _, c := range []struct{ body, want string }{
		{`{"id": 12345678901234567890}`, `{"id":12345678901234567890,"row":{"id":12345678901234567890,"n":9007199254740993}}`},
		{`{"id": 7}`, `{"id":7,"row":{"id":7,"n":0.1}}`},
	} {
		outs, err := run(t, p, c.body, "d", "e")
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := sinks.Encode(outs[0].Rec, ""); string(got) != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
	bad := []struct{ name, file, content, diag string }{
		{"jsonl: not an object", "a.jsonl", "{\"id\": 1}\n[1]\n", "a.jsonl:2: not a JSON object"},
		{"jsonl: not JSON", "b.jsonl", "{\"id\": 1}\n{\"id\": x}\n", "b.jsonl:2: not a JSON object: invalid character 'x' looking for beginning of value"},
		{"jsonl: not UTF-8", "c.jsonl", "{\"id\": \"\xff\"}\n", "c.jsonl:1: not a JSON object: invalid UTF-8 at byte 8"},
		{"json: syntax error on line 3", "d.json", "[\n{\"id\": 1},\n{\"id\" 2}\n]", `d.json:3: expected a JSON list of objects: invalid character '2' after object key`},
		{"json: an item not an object", "e.json", `[{"id": 1}, 2]`, "e.json: expected a JSON list of objects, but item 2 is not an object"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			writeTable(t, dir, c.file, c.content)
			src := "version: 1\nname: t\nsource: {type: kafka, topics: [in]}\nstages:\n  - {name: d, type: decode}\n" +
				"  - {name: e, type: enrich, key: msg.id, file: {path: " + c.file + ", key_column: id}, into: row}\n" +
				"sinks: [{name: a, type: kafka, topic: a}]\n"
			_, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{Env: func(string) (string, bool) { return "", false }, BaseDir: dir})
			if len(diags) != 1 || diags[0].Msg != c.diag {
				t.Fatalf("got %v\nwant %s", diags.Err(), c.diag)
			}
		})
	}
}

// An HTTP lookup's answer is read as decode reads a body: numbers as written, and an answer
// that is not UTF-8 is an error (not retried: retrying will not fix it).
func TestHTTPAnswerJSON(t *testing.T) {
	answers := map[string]string{"/big": `{"id": 12345678901234567890, "n": 9007199254740993}`, "/latin1": "{\"name\": \"caf\xe9\"}"}
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, answers[r.URL.Path]) }))
	defer svc.Close()
	p := build(t, `  - {name: d, type: decode}
  - {name: e, type: enrich, http: {url: '"`+svc.URL+`/" + msg.path', cache: {size: 0}}, into: answer}
`)
	outs, err := run(t, p, `{"path": "big"}`, "d", "e")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := sinks.Encode(outs[0].Rec, ""); string(got) != `{"answer":{"id":12345678901234567890,"n":9007199254740993},"path":"big"}` {
		t.Errorf("got %s", got)
	}
	_, err = run(t, p, `{"path": "latin1"}`, "d", "e")
	var he *stages.HTTPError
	if !errors.As(err, &he) || !errors.Is(err, record.ErrInvalidUTF8) || stages.ErrorClass(err) != "" {
		t.Fatalf("want an HTTPError wrapping ErrInvalidUTF8, of no retry class; got %v", err)
	}
}
