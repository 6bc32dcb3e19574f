package expr

import (
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// schemaOf builds a schema from the notation of a decode stage's schema, written as flow
// YAML. The decode stage reads it from the file (with positions and diagnostics); expr itself
// knows no YAML, so this is the tests' own short reading of it.
func schemaOf(t *testing.T, text string) *Schema {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		t.Fatal(err)
	}
	var build func(v any) *Schema
	build = func(v any) *Schema {
		switch x := v.(type) {
		case string:
			if s, ok := NamedSchema(x); ok {
				return s
			}
		case []any:
			if len(x) == 1 {
				return &Schema{Kind: List, Elem: build(x[0])}
			}
		case map[string]any:
			s := &Schema{Kind: Object, Fields: map[string]*Schema{}}
			for k, f := range x {
				if k == "*" {
					s.Open = build(f)
				} else {
					s.Fields[k] = build(f)
				}
			}
			return s
		}
		t.Fatalf("not a schema: %v", v)
		return nil
	}
	return build(v)
}

func exprValue(src string) *spec.Value {
	return &spec.Value{Str: src, Path: "when", Pos: diag.Pos{File: "t", Line: 1, Col: 1}}
}

// checkCompile compiles src against env: it must fail with a message holding err, or (err
// "") compute result.
func checkCompile(t *testing.T, env Env, want Want, src, result, err string) {
	t.Helper()
	var diags diag.List
	p := Compile(exprValue(src), env, want, &diags)
	if err != "" {
		if p != nil || len(diags) != 1 || !strings.Contains(diags[0].Msg, err) {
			t.Fatalf("want error %q, got %v", err, diags.Err())
		}
		return
	}
	if p == nil {
		t.Fatal(diags.Err())
	}
	if got := p.Result.String(); got != result {
		t.Errorf("result %s, want %s", got, result)
	}
}

func TestCompileChecksTypes(t *testing.T) {
	env := Env{Msg: schemaOf(t, "{amount: float, region: string, tags: [string], when: time, user: {name: string}}")}
	cases := []struct {
		name, src string
		want      Want
		result    string // the inferred result, when it compiles
		err       string
	}{
		{"comparison", "msg.amount > 10", WantBool, "bool", ""},
		{"arithmetic", "round(msg.amount * 100)", WantAny, "float", ""},
		{"string function", "upper(msg.region)", WantString, "string", ""},
		{"list element", "msg.tags[0]", WantAny, "string", ""},
		{"nested field", "msg.user.name", WantAny, "string", ""},
		{"time method", "msg.when.Hour()", WantAny, "int", ""},
		{"max of ints", "max(1, 2)", WantAny, "int", ""},
		{"max of an int and a float", "max(1, msg.amount)", WantAny, "float", ""},
		{"min of a list", "min([1, 2])", WantAny, "any", ""},
		{"map literal keeps fields", `{"a": 1, "b": msg.region}`, WantAny, "{a: int, b: string}", ""},
		// key and headers["x"] may be nil (a null key, a missing header), so not strings.
		{"metadata", `key + topic + headers["x"]`, WantString, "any", ""},
		{"metadata through a string function", `upper(key ?? "") + topic`, WantString, "string", ""},
		{"unknown field", "msg.ammount > 1", WantBool, "", "unknown field ammount (did you mean amount?)"},
		{"unknown nested field", "msg.user.nmae", WantAny, "", "unknown field nmae (did you mean name?)"},
		{"mismatch", `msg.amount > "x"`, WantBool, "", "mismatched types float64 and string"},
		{"not a condition", "msg.amount", WantBool, "", "must be a condition"},
		{"not a string", "msg.amount", WantString, "", "must compute a string"},
		{"unknown variable", "mgs.amount", WantAny, "", "unknown name mgs (did you mean msg?)"},
		{"syntax", "msg.amount >", WantAny, "", "unexpected token EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkCompile(t, env, c.want, c.src, c.result, c.err) })
	}
}

func TestCompileErrorColumn(t *testing.T) {
	var diags diag.List
	v := exprValue("msg.a && msg.ammount")
	v.Pos = diag.Pos{File: "t", Line: 3, Col: 11}
	// ExprPos relies on the parser having recorded where the text starts; without it the
	// value's own position stands in, which is what this Value has.
	Compile(v, Env{Msg: schemaOf(t, "{a: bool, amount: float}")}, WantBool, &diags)
	if len(diags) != 1 || diags[0].Pos.Line != 3 {
		t.Fatalf("got %v", diags.Err())
	}
}

func TestCoerce(t *testing.T) {
	s := schemaOf(t, `{id: int, price: float, at: time, tags: [string], note: "string?", "*": any}`)
	cases := []struct {
		name string
		in   map[string]any
		err  string
	}{
		{"ok", map[string]any{"id": 3.0, "price": 2.0, "at": "2026-01-02T03:04:05Z", "tags": []any{"a"}, "extra": true}, ""},
		{"optional absent", map[string]any{"id": 1.0, "price": 1.5, "at": "2026-01-02T03:04:05Z", "tags": []any{}}, ""},
		{"missing", map[string]any{"price": 1.0, "at": "2026-01-02T03:04:05Z", "tags": []any{}}, "id: missing int"},
		{"fraction for int", map[string]any{"id": 1.5, "price": 1.0, "at": "2026-01-02T03:04:05Z", "tags": []any{}}, "id: expected int, got a number"},
		{"bad time", map[string]any{"id": 1.0, "price": 1.0, "at": "yesterday", "tags": []any{}}, `at: "yesterday" is not an RFC 3339 time`},
		{"bad element", map[string]any{"id": 1.0, "price": 1.0, "at": "2026-01-02T03:04:05Z", "tags": []any{1.0}}, "tags[0]: expected string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := s.Coerce(c.in, "")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("want %q, got %v", c.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := out.(map[string]any)
			if _, ok := m["id"].(int); !ok {
				t.Errorf("id not converted to int: %T", m["id"])
			}
			if _, ok := m["at"].(time.Time); !ok {
				t.Errorf("at not converted to time: %T", m["at"])
			}
		})
	}
	closed := schemaOf(t, "{id: int}")
	if _, err := closed.Coerce(map[string]any{"id": 1.0, "x": 1.0}, ""); err == nil || !strings.Contains(err.Error(), "x: field not in the schema") {
		t.Errorf("closed schema took an unknown field: %v", err)
	}
}

// A body that already holds what its schema asks for is checked without an allocation: the
// decode stage coerces every record, and boxing a float or an int again was one each.
func TestCoerceKeepsWhatFits(t *testing.T) {
	s := schemaOf(t, `{id: int, price: float, name: string, ok: bool, "*": any}`)
	cases := []struct {
		name string
		in   map[string]any
	}{
		{"an int and a float as decoded", map[string]any{"id": 3, "price": 2.5, "name": "x", "ok": true}},
		{"with a field the schema does not name", map[string]any{"id": 3, "price": 2.5, "name": "x", "ok": true, "extra": 1.5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(100, func() {
				if _, err := s.Coerce(c.in, ""); err != nil {
					t.Fatal(err)
				}
			}); allocs != 0 {
				t.Fatalf("%v allocations a body", allocs)
			}
		})
	}
}

func TestRun(t *testing.T) {
	var diags diag.List
	p := Compile(exprValue(`msg.n * 2 + len(key) + len(headers["h"])`), Env{}, WantAny, &diags)
	if p == nil {
		t.Fatal(diags.Err())
	}
	env := NewBinder(p)
	vars := env.Bind(&record.Record{Key: []byte("abc"), Headers: []record.Header{{Key: "h", Value: []byte("xy")}}, Msg: map[string]any{"n": 5}, Decoded: true})
	out, err := p.Run(vars)
	if err != nil || out != 15 {
		t.Fatalf("got %v, %v", out, err)
	}
	env.Release(vars)
	vars = env.Bind(&record.Record{Msg: map[string]any{"n": "five"}, Decoded: true})
	if _, err := p.Run(vars); err == nil {
		t.Fatal("want a runtime error for a string times two")
	} else if _, ok := err.(*RuntimeError); !ok {
		t.Fatalf("want *RuntimeError, got %T", err)
	}
}

// A Binder fills in the variables its programs read, and only those.
func TestBinderBindsWhatIsRead(t *testing.T) {
	rec := &record.Record{Key: []byte("k"), Topic: "t", Partition: 2, Offset: 7, Value: []byte("raw"),
		Headers: []record.Header{{Key: "h", Value: []byte("v")}}}
	cases := []struct {
		name  string
		exprs []string
		bound []string
	}{
		{"body only", []string{`msg == nil`}, []string{"msg"}},
		{"metadata", []string{`key + topic`, `partition + offset > 0`}, []string{"key", "offset", "partition", "topic"}},
		{"inside a closure", []string{`all([1, 2], {# < len(headers)})`}, []string{"headers"}},
		{"a let shadowing nothing bound", []string{`let x = 1; x + 1`}, nil},
		{"timestamp", []string{`timestamp.Year() > 2000`}, []string{"timestamp"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var progs []*Program
			for _, e := range c.exprs {
				var diags diag.List
				p := Compile(exprValue(e), Env{}, WantAny, &diags)
				if p == nil {
					t.Fatal(diags.Err())
				}
				progs = append(progs, p)
			}
			env := NewBinder(progs...)
			vars := env.Bind(rec)
			var bound []string
			for name := range vars {
				bound = append(bound, name)
			}
			sort.Strings(bound)
			if strings.Join(bound, ",") != strings.Join(c.bound, ",") {
				t.Errorf("bound %v, want %v", bound, c.bound)
			}
			for _, p := range progs {
				if _, err := p.Run(vars); err != nil {
					t.Errorf("%v", err)
				}
			}
			env.Release(vars)
			if len(vars) != 0 {
				t.Errorf("a released environment still holds %v", vars)
			}
		})
	}
}
