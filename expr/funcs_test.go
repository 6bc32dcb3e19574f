package expr

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/builtin"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// Every builtin of the expr-lang in go.mod is documented, and nothing else is: an upgrade
// that adds or drops one fails here until the list says so.
func TestBuiltinsAreDocumented(t *testing.T) {
	documented := map[string]bool{}
	for _, g := range Builtins {
		for _, f := range g.Funcs {
			if documented[f.Name] {
				t.Errorf("%s is documented twice", f.Name)
			}
			documented[f.Name] = true
		}
	}
	have := map[string]bool{}
	for _, f := range builtin.Builtins {
		have[f.Name] = true
		if !documented[f.Name] {
			t.Errorf("expr-lang has the builtin %s, which expr.Builtins does not document: add it, with an example", f.Name)
		}
	}
	for name := range documented {
		if !have[name] {
			t.Errorf("expr.Builtins documents %s, which expr-lang no longer has", name)
		}
	}
	for _, f := range Functions {
		if have[f.Name] {
			t.Errorf("pythia-pipe's %s has the name of a builtin", f.Name)
		}
	}
}

// Each doc is one line that begins with how the function is called.
func TestFunctionDocsAreOneLine(t *testing.T) {
	for _, f := range allDocs() {
		if !strings.HasPrefix(f.Sig, f.Name+"(") || f.Doc == "" || strings.ContainsAny(f.Sig+f.Doc, "\n\r") {
			t.Errorf("%s: %q %q", f.Name, f.Sig, f.Doc)
		}
	}
}

func allDocs() []FuncDoc {
	all := append([]FuncDoc(nil), Functions...)
	for _, g := range Builtins {
		all = append(all, g.Funcs...)
	}
	return all
}

// example is `CALL` is `RESULT` in a doc.
var example = regexp.MustCompile("`([^`]+)` is `([^`]+)`")

// Every example in the docs computes what it says; every function but now has one.
func TestFunctionExamples(t *testing.T) {
	for _, f := range allDocs() {
		examples := example.FindAllStringSubmatch(f.Doc, -1)
		if len(examples) == 0 && f.Name != "now" {
			t.Errorf("%s: no example (`CALL` is `RESULT`) in %q", f.Name, f.Doc)
		}
		for _, ex := range examples {
			t.Run(ex[1], func(t *testing.T) {
				if !strings.Contains(ex[1], f.Name+"(") {
					t.Errorf("the example of %s does not call it", f.Name)
				}
				got, want := evalExample(t, ex[1]), evalExample(t, ex[2])
				if !reflect.DeepEqual(comparable(got), comparable(want)) {
					t.Errorf("%s is %#v, not %#v (%s)", ex[1], got, want, ex[2])
				}
			})
		}
	}
}

func evalExample(t *testing.T, src string) any {
	t.Helper()
	var diags diag.List
	p := Compile(exprValue(src), Env{}, WantAny, &diags)
	if p == nil {
		t.Fatal(diags.Err())
	}
	out, err := p.Run(Vars{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// comparable is v with its lists as []any and its maps as map[string]any, so that what a
// builtin returns ([]string, [][2]any, map[any]any) compares with a literal.
func comparable(v any) any {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = comparable(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range rv.MapKeys() {
			out[fmt.Sprint(k.Interface())] = comparable(rv.MapIndex(k).Interface())
		}
		return out
	}
	return v
}

func TestRFC3339(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 20, 18, 38, 123e6, time.UTC)
	cases := []struct {
		name, src string
		schema    string // the body's, "" for none
		body      string
		timestamp time.Time
		want      string
		err       string // at run time
	}{
		{"a record's timestamp", "rfc3339(timestamp)", "", `{}`, at, "2026-11-26T20:18:38.123Z", ""},
		{"in UTC whatever its zone", "rfc3339(timestamp)", "", `{}`, at.In(paris), "2026-11-26T20:18:38.123Z", ""},
		{"a whole second keeps three digits", "rfc3339(timestamp)", "", `{}`, at.Truncate(time.Second), "2026-11-26T20:18:38.000Z", ""},
		{"below the millisecond is dropped", "rfc3339(timestamp)", "", `{}`, at.Add(999 * time.Microsecond), "2026-11-26T20:18:38.123Z", ""},
		{"a time field of the schema", "rfc3339(msg.at)", "{at: time}", `{"at": "2026-11-26T21:18:38.5+01:00"}`, time.Time{}, "2026-11-26T20:18:38.500Z", ""},
		{"a parsed date", `rfc3339(date("2026-11-26"))`, "", `{}`, time.Time{}, "2026-11-26T00:00:00.000Z", ""},
		{"a later time", "rfc3339(timestamp + duration(\"1h\"))", "", `{}`, at, "2026-11-26T21:18:38.123Z", ""},
		{"a string of a body without schema", "rfc3339(msg.at)", "", `{"at": "2026-11-26"}`, time.Time{}, "", `rfc3339("2026-11-26"): not a time`},
		{"a missing field", "rfc3339(msg.at)", "", `{}`, time.Time{}, "", "rfc3339(nil): not a time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := Env{}
			if c.schema != "" {
				env.Msg = schemaOf(t, c.schema)
			}
			var diags diag.List
			p := Compile(exprValue(c.src), env, WantString, &diags)
			if p == nil {
				t.Fatal(diags.Err())
			}
			msg := decoded(t, c.body)
			if env.Msg != nil {
				if msg, err = env.Msg.Coerce(msg, ""); err != nil {
					t.Fatal(err)
				}
			}
			b := NewBinder(p)
			vars := b.Bind(&record.Record{Msg: msg, Decoded: true, Timestamp: c.timestamp})
			defer b.Release(vars)
			out, err := p.Run(vars)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, %v; want an error saying %q", out, err, c.err)
				}
				return
			}
			if err != nil || out != c.want {
				t.Fatalf("got %#v, %v; want %q", out, err, c.want)
			}
		})
	}
}

// What is known to be no time is refused before anything runs.
func TestRFC3339ChecksItsArgument(t *testing.T) {
	cases := []struct{ name, src, schema, err string }{
		{"a string", `rfc3339("2026-11-26")`, "", "cannot use string as argument (type time.Time) to call rfc3339"},
		{"an int field", "rfc3339(msg.n)", "{n: int}", "cannot use int as argument (type time.Time) to call rfc3339"},
		{"no argument", "rfc3339()", "", "not enough arguments to call rfc3339"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := Env{}
			if c.schema != "" {
				env.Msg = schemaOf(t, c.schema)
			}
			checkCompile(t, env, WantAny, c.src, "", c.err)
		})
	}
}
