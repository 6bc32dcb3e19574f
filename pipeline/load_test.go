package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

const header = "version: 1\nname: t\nsource: {type: kafka, topics: [in]}\n"

func parseString(t *testing.T, src string, env map[string]string) (*Pipeline, diag.List) {
	t.Helper()
	return Parse("p.yaml", []byte(src), Options{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, BaseDir: t.TempDir()})
}

// A misspelt field in a filter under a schema is reported at the column of the field name,
// inside the expression — also on a line holding a ${VAR}.
func TestUnknownFieldColumn(t *testing.T) {
	cases := []struct {
		name, line string
	}{
		{"plain", "    when: msg.ammount > 0"},
		{"single quoted", "    when: 'msg.ammount > 0'"},
		{"double quoted", `    when: "msg.ammount > 0"`},
		{"after interpolation", "    when: msg.ammount > ${LIMIT:-10}"},
		{"flow mapping", "  - {name: f, type: filter, when: msg.amount > 0 && msg.ammount > 1}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stage := "  - name: f\n    type: filter\n" + c.line + "\n"
			if strings.HasPrefix(c.line, "  - {") {
				stage = c.line + "\n"
			}
			src := header + "stages:\n  - {name: d, type: decode, schema: {amount: float}}\n" + stage + "sinks: [{name: o, type: kafka, topic: out}]\n"
			_, diags := parseString(t, src, nil)
			if len(diags) != 1 {
				t.Fatalf("want 1 diagnostic, got %v", diags.Err())
			}
			d := diags[0]
			wantLine := strings.Count(src[:strings.Index(src, c.line)], "\n") + 1
			wantCol := strings.Index(c.line, "ammount") + 1
			if d.Pos.Line != wantLine || d.Pos.Col != wantCol {
				t.Errorf("at %d:%d, want %d:%d (%s)", d.Pos.Line, d.Pos.Col, wantLine, wantCol, d.Msg)
			}
			if !strings.Contains(d.Msg, "unknown field ammount (did you mean amount?)") {
				t.Errorf("message %q", d.Msg)
			}
		})
	}
}

func TestInterpolation(t *testing.T) {
	env := map[string]string{"TOPIC": "from-env", "EMPTY": "", "WEIRD": "a: b, {c}"}
	cases := []struct {
		name, value string
		want        string // the sink topic after substitution, or a diagnostic fragment
		wantErr     bool
	}{
		{"set", "${TOPIC}", "from-env", false},
		{"default unused", "${TOPIC:-x}", "from-env", false},
		{"default used", "${NOPE:-fallback}", "fallback", false},
		{"empty uses default", "${EMPTY:-fallback}", "fallback", false},
		{"in the middle", "pre-${TOPIC}-post", "pre-from-env-post", false},
		{"escaped", "'$${TOPIC}'", "${TOPIC}", true}, // a literal ${TOPIC} is not a valid topic name
		{"unset", "${NOPE}", "environment variable NOPE is not set", true},
		{"unterminated", "${TOPIC", "unterminated ${", true},
		{"bad name", "${1X}", "invalid variable reference ${1X}", true},
		{"default after : alone", "${TOPIC:x}", "invalid variable reference ${TOPIC:x}: a default follows :- (write ${TOPIC:-x})", true},
		{"default after - alone", "${TOPIC-x}", "invalid variable reference ${TOPIC-x}: a default follows :- (write ${TOPIC:-x})", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := header + "sinks:\n  - name: o\n    type: kafka\n    topic: " + c.value + "\n"
			p, diags := parseString(t, src, env)
			if c.wantErr {
				if len(diags) == 0 || !strings.Contains(diags.Err().Error(), strings.Split(c.want, "$")[0]) {
					t.Fatalf("want a diagnostic with %q, got %v", c.want, diags.Err())
				}
				if diags[0].Pos.Line != 7 {
					t.Errorf("diagnostic on line %d, want 7", diags[0].Pos.Line)
				}
				return
			}
			if len(diags) > 0 {
				t.Fatal(diags.Err())
			}
			if namedTopic(p.Sinks[0]) != c.want {
				t.Errorf("topic = %q, want %q", namedTopic(p.Sinks[0]), c.want)
			}
		})
	}
}

// An unset variable is reported once, at the ${ and naming the field, without the
// follow-on problems of the placeholder.
func TestUnsetVariableNamesField(t *testing.T) {
	src := header + "sinks: [{name: o, type: kafka, topic: out, create: {partitions: ${PARTS}}}]\n"
	_, diags := parseString(t, src, nil)
	if len(diags) != 1 {
		t.Fatalf("want 1 diagnostic, got %v", diags.Err())
	}
	d := diags[0]
	if d.Path != "sinks[0].create.partitions" || d.Pos.Col != strings.Index(src[strings.LastIndex(src, "sinks"):], "${")+1 {
		t.Errorf("got %v", d)
	}
}

// Columns after a substitution of another length are those of the file.
func TestColumnsAfterSubstitution(t *testing.T) {
	src := header + "sinks: [{name: o, type: kafka, topic: ${T:-a-much-longer-default-topic}, acks: leaderr}]\n"
	_, diags := parseString(t, src, nil)
	if len(diags) != 1 {
		t.Fatalf("want 1 diagnostic, got %v", diags.Err())
	}
	line := strings.Split(src, "\n")[3]
	if want := strings.Index(line, "leaderr") + 1; diags[0].Pos.Col != want {
		t.Errorf("col %d, want %d", diags[0].Pos.Col, want)
	}
}

// Secrets never appear in diagnostics, even when the value itself is wrong.
func TestSecretsNotInDiagnostics(t *testing.T) {
	src := "version: 1\nname: t\nkafka:\n  security:\n    protocol: SSL\n    sasl: {mechanism: PLAIN, username: u, password: ${PW}}\n" +
		"source: {type: kafka, topics: [in]}\nsinks: [{name: o, type: kafka, topic: out}]\n"
	_, diags := parseString(t, src, map[string]string{"PW": "hunter2-secret"})
	if len(diags) == 0 {
		t.Fatal("want a diagnostic for sasl over SSL")
	}
	if strings.Contains(diags.Err().Error(), "hunter2") {
		t.Errorf("password leaked: %v", diags.Err())
	}
}

func TestImplicitEdges(t *testing.T) {
	cases := []struct {
		name, stages, sinks string
		want                map[string]string // stage -> its targets, port by port
		entry               string
	}{
		{"next stage then only sink", "[{name: a, type: decode}, {name: b, type: decode}]", "[{name: o, type: kafka, topic: t}]",
			map[string]string{"a": "b", "b": "o"}, "a"},
		{"explicit fan-out", "[{name: a, type: decode, to: [o, p]}]", "[{name: o, type: kafka, topic: t}, {name: p, type: kafka, topic: u}]",
			map[string]string{"a": "o,p"}, "a"},
		{"no stages", "[]", "[{name: o, type: kafka, topic: t}]", map[string]string{}, "o"},
		{"branch ports", "[{name: b, type: branch, routes: [{when: 'key == \"x\"', to: o}, {to: [o, p]}]}]",
			"[{name: o, type: kafka, topic: t}, {name: p, type: kafka, topic: u}]", map[string]string{"b": "o|o,p"}, "b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, diags := parseString(t, header+"stages: "+c.stages+"\nsinks: "+c.sinks+"\n", nil)
			if len(diags) > 0 {
				t.Fatal(diags.Err())
			}
			for _, st := range p.Stages {
				var ports []string
				for _, port := range st.Ports {
					ports = append(ports, strings.Join(port.To, ","))
				}
				if got := strings.Join(ports, "|"); got != c.want[st.Name] {
					t.Errorf("%s -> %s, want %s", st.Name, got, c.want[st.Name])
				}
			}
			if got := strings.Join(p.Entry, ","); got != c.entry {
				t.Errorf("entry %s, want %s", got, c.entry)
			}
		})
	}
}

// Fields set by a map become known downstream with their inferred types.
func TestTypesFlowDownstream(t *testing.T) {
	src := header + `stages:
  - {name: d, type: decode, schema: {price: float, n: int}}
  - {name: m, type: map, set: {total: msg.price * msg.n, label: 'string(msg.n) + "x"'}}
  - {name: f, type: filter, when: 'msg.total > 1 && msg.label != ""'}
  - {name: g, type: filter, when: 'msg.label > 1'}
sinks: [{name: o, type: kafka, topic: out}]
`
	_, diags := parseString(t, src, nil)
	if len(diags) != 1 || diags[0].Path != "stages[3].when" || !strings.Contains(diags[0].Msg, "mismatched types string and int") {
		t.Fatalf("want one type error on stages[3].when, got %v", diags.Err())
	}
}

// Entries of stages or sinks written without the "- " of the next are split where the next
// begins: one error each, and every entry checked as meant.
func TestRunTogether(t *testing.T) {
	cases := []struct {
		name, body string
		errs       []string // "line:col path: fragment"
	}{
		{"three stages", "stages:\n  - name: d\n    type: decode\n    name: f\n    type: filter\n    when: msg.a == 1\n    type: map\n    name: m\n    set: {b: 1}\nsinks: [{name: o, type: kafka, topic: o}]\n",
			[]string{`7:5 stages[0].name: a second name in one stage`, `10:5 stages[0].type: a second type in one stage: two stages run together, as no "- " starts the second; write "- type: map" in line with the "- " of line 7`}},
		{"two sinks", "stages: []\nsinks:\n  - name: a\n    type: kafka\n    topic: a\n    type: kafka\n    name: b\n    topic: b\n",
			[]string{`1:1 stages: without stages, records go straight to the only sink, but there are several (a, b)`, `9:5 sinks[0].type: a second type in one sink: two sinks run together`}},
		{"a sink that starts with a field the first has", "stages: []\nsinks:\n  - name: a\n    type: kafka\n    topic: a\n    topic: b\n    name: b\n    type: kafka\n",
			[]string{`1:1 stages: without stages`, `9:5 sinks[0].topic: a second topic in one sink: two sinks run together, as no "- " starts the second; write "- topic: b" in line with the "- " of line 6`}},
		{"a type's field twice", "stages:\n  - name: d\n    type: decode\n    schema:\n      a: int\n    schema: {a: string}\nsinks: [{name: o, type: kafka, topic: o}]\n",
			[]string{`9:5 stages[0].schema: a second schema in one stage (the first is on line 7): keep one; or, if a second stage starts here, start it with "- schema:" in line with the "- " of line 5, and give it a name and a type`}},
		{"an unknown key twice is only unknown", "stages:\n  - name: d\n    type: decode\n    shema: {a: int}\n    shema: {a: int}\nsinks: [{name: o, type: kafka, topic: o}]\n",
			[]string{`7:5 stages[0].shema: unknown field "shema"`, `8:5 stages[0].shema: unknown field "shema"`}},
		{"a flow mapping is left as it is", "stages: [{name: d, type: decode, name: e}]\nsinks: [{name: o, type: kafka, topic: o}]\n",
			[]string{`4:34 stages[0].name: duplicate field "name"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags := parseString(t, header+c.body, nil)
			if len(diags) != len(c.errs) {
				t.Fatalf("want %d errors, got:\n%v", len(c.errs), diags.Err())
			}
			for i, d := range diags {
				if got := fmt.Sprintf("%d:%d %s: %s", d.Pos.Line, d.Pos.Col, d.Path, d.Msg); !strings.HasPrefix(got, c.errs[i]) {
					t.Errorf("got  %s\nwant %s…", got, c.errs[i])
				}
			}
		})
	}
}

// A YAML error is reported at the line that breaks the file, which libyaml names only as the
// start of the block it was in, however many lines above.
func TestYAMLErrorLine(t *testing.T) {
	cases := []struct {
		name, src string
		at        string // line:col
		msg       string // a fragment
	}{
		{"a key at its item's -", "a:\n  - x: 1\n    y: 2\n\n    z: 3\n  w: 4\n", "6:3", `as the "-" of the list item on line 2, but starts no item: indent it as that item's keys (4 spaces)`},
		{"a key under-indented by one", "a:\n  b:\n    c: 1\n    d: 2\n   e: 3\n", "5:4", "indented 3 spaces, which lines up with no block above it (those are at 0, 2, 4)"},
		{"one space", "a:\n  b: 1\n c: 2\n", "3:2", "indented 1 space, which lines up"},
		{"a quoted value and more", "a:\n  b: 1\n  c: 'x' + y\n", "3:10", `and + y after it is not YAML; quote the whole value: '''x'' + y'`},
		{"?. and ?? in a flow mapping", "a:\n  b: 1\n  c: {d: msg.x?.y ?? 0, e: 1}\n", "3:10", `an expression holding ?. or ?? inside {…} must be quoted: 'msg.x?.y ?? 0'`},
		{"?? and a single quote in a flow mapping", "a:\n  c: {d: msg.x ?? 'none'}\n", "2:10", `must be quoted: "msg.x ?? 'none'"`},
		{"a double-quoted value and more", "a:\n  b:\n    c: 1\n    d: \"a \\\" b\" + e\n", "4:17", `and + e after it is not YAML; quote the whole value: '"a \" b" + e'`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags := parseString(t, c.src, nil)
			if len(diags) != 1 {
				t.Fatalf("want one error, got %v", diags.Err())
			}
			d := diags[0]
			if got := fmt.Sprintf("%d:%d", d.Pos.Line, d.Pos.Col); got != c.at || !strings.Contains(d.Msg, c.msg) {
				t.Errorf("got %s %s\nwant %s …%s…", got, d.Msg, c.at, c.msg)
			}
		})
	}
}
