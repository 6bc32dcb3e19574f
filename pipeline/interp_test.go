package pipeline

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// A variable's value arrives exactly as set, whatever it holds: YAML never reads it. Each value
// goes through a flow mapping (the README's sasl line), a plain block value, double and single
// quotes, and an expression (as a string literal, Go-quoted, which expr-lang reads back).
func TestVariablesArriveExactly(t *testing.T) {
	cases := []struct{ name, value string }{
		{"comment", "s3cr3t #tail"},
		{"hash first", "#s3cr3t"},
		{"anchor", "&anc real"},
		{"alias", "*star"},
		{"single quotes", "'quoted'"},
		{"double quotes", `"double"`},
		{"both quotes", `it's "x"`},
		{"colon space", "key: value"},
		{"flow mapping", "{a: b}"},
		{"flow sequence", "[a, b]"},
		{"braces", "}{"},
		{"comma", "a,b"},
		{"tag", "!bang"},
		{"directive", "%pct"},
		{"reserved", "@at `tick`"},
		{"literal block", "| pipe"},
		{"folded block", "> gt"},
		{"dash", "- item"},
		{"question", "? q"},
		{"leading and trailing spaces", "  padded  "},
		{"null", "null"},
		{"tilde", "~"},
		{"true", "true"},
		{"number", "123"},
		{"octal-looking", "0o17"},
		{"float-looking", "1e3"},
		{"merge key", "<<"},
		{"a reference", "${NOT_A_VAR}"},
		{"an escaped reference", "$${X}"},
		{"backslashes", `a\nb\"c`},
		{"private-use characters", "\uE000\uE100\uE100\uE001"},
		{"unicode", "pässwörd ✓"},
		{"line break", "line one\nline two"},
		{"everything", ` #&'":{[*!%@|>,]} `},
	}
	src := `version: 1
name: t
kafka:
  client_id: ${PW}
  security:
    protocol: SASL_PLAINTEXT
    sasl: {mechanism: SCRAM-SHA-512, username: ${USER}, password: ${PW}}
source:
  type: kafka
  topics: [in]
  group: "${PW}"
  instance_id: '${PW}'
stages:
  - {name: d, type: decode}
  - {name: m, type: map, set: {pw: ${PW_EXPR} + msg.id}}
sinks: [{name: o, type: kafka, topic: out}]
`
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"USER": "alice", "PW": c.value, "PW_EXPR": strconv.Quote(c.value)}
			p, diags := parseString(t, src, env)
			if len(diags) > 0 {
				t.Fatal(diags.Err())
			}
			for what, got := range map[string]string{
				"kafka.security.sasl.password": p.Kafka.SASL.Password,
				"kafka.client_id":              p.Kafka.ClientID,
				"source.group":                 p.KafkaSource().Group,
				"source.instance_id":           p.KafkaSource().InstanceID,
			} {
				if got != c.value {
					t.Errorf("%s = %q, want %q", what, got, c.value)
				}
			}
			if p.Kafka.SASL.Username != "alice" {
				t.Errorf("username %q", p.Kafka.SASL.Username)
			}
			rec := &record.Record{Msg: map[string]any{"id": "-1"}, Decoded: true}
			out, err := p.Stages[1].Impl.Process(context.Background(), rec, nil)
			if err != nil || len(out) != 1 {
				t.Fatalf("map: %v", err)
			}
			if got := record.Plain(out[0].Rec.Msg).(map[string]any)["pw"]; got != c.value+"-1" {
				t.Errorf("expression computed %q, want %q", got, c.value+"-1")
			}
		})
	}
}

// A plain scalar whose value comes from variables takes the type its value would have written
// there, so numbers, booleans and durations work; quoted, it stays a string, as quoted text
// would. Only an empty value reads as nothing (`${VAR:-}` leaves a field to its default).
func TestVariableTypes(t *testing.T) {
	cases := []struct {
		name, field, value string
		check              func(p *Pipeline) bool
		err                string // a fragment of the one expected diagnostic; "" = valid
	}{
		{"int", "create: {partitions: ${V}}", "6", func(p *Pipeline) bool { return producer(p.Sinks[0]).Create.Int("partitions") == 6 }, ""},
		{"int inside text", "create: {partitions: 1${V}}", "2", func(p *Pipeline) bool { return producer(p.Sinks[0]).Create.Int("partitions") == 12 }, ""},
		{"int from words", "create: {partitions: ${V}}", "six", nil, `expected a whole number, got "six"`},
		{"int quoted", `create: {partitions: "${V}"}`, "6", nil, `expected a whole number, got "6"`},
		{"int from null", "create: {partitions: ${V}}", "null", nil, `expected a whole number, got "null"`},
		{"int empty takes the default", "create: {partitions: ${V:-}}", "", func(p *Pipeline) bool { return producer(p.Sinks[0]).Create.Int("partitions") == 1 }, ""},
		{"bool", "idempotent: ${V}, acks: leader", "false", func(p *Pipeline) bool { return !producer(p.Sinks[0]).Idempotent }, ""},
		{"bool from yes", "idempotent: ${V}", "yes", nil, `expected true or false, got "yes"`},
		{"duration", "linger: ${V}", "20ms", func(p *Pipeline) bool { return producer(p.Sinks[0]).Linger == 20*time.Millisecond }, ""},
		{"duration without unit", "linger: ${V}", "20", nil, "a duration needs a unit: write 20s or 20ms"},
		{"size", "batch_bytes: ${V}", "1KiB", func(p *Pipeline) bool { return producer(p.Sinks[0]).BatchBytes == 1024 }, ""},
		{"enum", "acks: ${V}", "ALL", func(p *Pipeline) bool { return producer(p.Sinks[0]).Acks == "all" }, ""},
		{"string from a number", "topic: ${V}", "123", func(p *Pipeline) bool { return namedTopic(p.Sinks[0]) == "123" }, ""},
		{"string from a bool", "topic: ${V}", "true", func(p *Pipeline) bool { return namedTopic(p.Sinks[0]) == "true" }, ""},
		{"string tagged", "topic: !!str ${V}", "007", func(p *Pipeline) bool { return namedTopic(p.Sinks[0]) == "007" }, ""},
		{"empty reads as nothing", "topic: ${V}", "", nil, `missing required field "topic"`},
		{"empty quoted is a string", `topic_expr: '"x"', topic_allow: ["${V}x"]`, "", func(p *Pipeline) bool { return slices.Equal(allowed(p.Sinks[0]), []string{"x"}) }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fields := c.field
			if !strings.Contains(fields, "topic") {
				fields = "topic: out, " + fields
			}
			src := header + "sinks:\n  - {name: o, type: kafka, " + fields + "}\n"
			p, diags := parseString(t, src, map[string]string{"V": c.value})
			if c.err == "" {
				if len(diags) > 0 {
					t.Fatal(diags.Err())
				}
				if !c.check(p) {
					t.Errorf("unexpected value: %+v", p.Sinks[0])
				}
				return
			}
			if len(diags) != 1 || !strings.Contains(diags[0].Msg, c.err) {
				t.Fatalf("want one diagnostic with %q, got %v", c.err, diags.Err())
			}
		})
	}
}

// Diagnostics about references point at them, name the field they sit in, and ignore comments.
func TestReferenceDiagnostics(t *testing.T) {
	cases := []struct {
		name, stages string
		env          map[string]string
		at           string // "" = valid; else the text the diagnostic points at (its first occurrence)
		want         string // its path and message
	}{
		{"unset in a block scalar", "  - name: f\n    type: filter\n    when: |\n      key != \"\" &&\n        key != ${NOPE}\n",
			nil, "${NOPE}", "stages[0].when: environment variable NOPE is not set"},
		{"unset in a comment", "  - {name: f, type: filter, when: 'true'}   # ${NOPE}\n", nil, "", ""},
		{"unterminated", "  - name: f\n    type: filter\n    when: key != ${NOPE\n", nil, "${NOPE", "stages[0].when: unterminated ${"},
		{"unterminated in a comment", "  - {name: f, type: filter, when: 'true'}   # ${NOPE\n", nil, "", ""},
		{"invalid name", "  - {name: f, type: filter, when: 'key != \"${1X}\"'}\n", nil, "${1X}", "stages[0].when: invalid variable reference ${1X}"},
		{"invalid name breaking the YAML", "  - {name: f, type: filter, when: 'key != \"${NO\"'}\n", nil, "${NO", `: invalid variable reference ${NO"'}`},
		{"expression error after a longer value", "  - {name: f, type: filter, when: '${V} && ammount'}\n",
			map[string]string{"V": "key != \"a much longer value than its reference\""}, "ammount", "stages[0].when: unknown name ammount"},
		{"expression error after a value with a line break", "  - {name: f, type: filter, when: '${V} && ammount'}\n",
			map[string]string{"V": "key != \"a\"\n&& key != \"b\""}, "ammount", "stages[0].when: unknown name ammount"},
		{"expression error inside a value", "  - {name: f, type: filter, when: 'key != \"\" && ${V}'}\n",
			map[string]string{"V": "ammount > 1"}, "${V}", "stages[0].when: unknown name ammount"},
		{"expression error showing a value", "  - {name: f, type: filter, when: 'key == \"x\" \"${V}\"'}\n",
			map[string]string{"V": "k3y-s3cr3t"}, "\"${V}", `stages[0].when: unexpected token String("${V}")`},
		{"line break in a key", "  - {name: m, type: map, set: {${V}: key}}\n",
			map[string]string{"V": "a\nb"}, "${V}", ": the value of ${V} contains a line break, which a key cannot hold"},
		{"key from a variable", "  - {name: m, type: map, set: {${V}: key}}\n", map[string]string{"V": "k: #"}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := header + "stages:\n" + c.stages + "sinks: [{name: o, type: kafka, topic: out}]\n"
			_, diags := parseString(t, src, c.env)
			if c.at == "" {
				if len(diags) > 0 {
					t.Fatal(diags.Err())
				}
				return
			}
			// A reference that breaks the YAML comes with the syntax error it causes.
			if want := 1 + strings.Count(c.name, "breaking the YAML"); len(diags) != want {
				t.Fatalf("want %d diagnostic(s), got %v", want, diags.Err())
			}
			i := strings.Index(src, c.at)
			lineStart := strings.LastIndex(src[:i], "\n") + 1
			want := strconv.Itoa(strings.Count(src[:i], "\n")+1) + ":" + strconv.Itoa(utf8.RuneCountInString(src[lineStart:i])+1) + " " + c.want
			d := diags[len(diags)-1]
			if got := strconv.Itoa(d.Pos.Line) + ":" + strconv.Itoa(d.Pos.Col) + " " + d.Path + ": " + d.Msg; !strings.HasPrefix(got, want) {
				t.Errorf("got  %s\nwant %s…", got, want)
			}
		})
	}
}

// A failing expression is quoted as written, with its ${VAR}s: never the values, which may be
// secrets, neither in the quote, nor in expr-lang's snippet, nor in a message made from a value.
func TestRuntimeErrorQuotesTheExpressionAsWritten(t *testing.T) {
	cases := []struct {
		name, expr, want string
	}{
		{"a URL with a key", `'"${RISK_URL}/v1/score?api_key=${KEY}" + msg.id'`,
			`set u: expression "\"${RISK_URL}/v1/score?api_key=${KEY}\" + msg.id": invalid operation: string + <nil>`},
		{"a value in the message", `'int("${KEY}") + msg.id'`,
			`set u: expression "int(\"${KEY}\") + msg.id": int("${KEY}"): not an integer`},
	}
	env := map[string]string{"RISK_URL": "http://risk.internal:8080", "KEY": "k3y-s3cr3t"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := header + "stages:\n  - {name: d, type: decode}\n  - {name: m, type: map, set: {u: " + c.expr + "}}\nsinks: [{name: o, type: kafka, topic: out}]\n"
			p, diags := parseString(t, src, env)
			if len(diags) > 0 {
				t.Fatal(diags.Err())
			}
			_, err := p.Stages[1].Impl.Process(context.Background(), &record.Record{Msg: map[string]any{}, Decoded: true}, nil)
			var rt *expr.RuntimeError
			if !errors.As(err, &rt) {
				t.Fatalf("want a *expr.RuntimeError, got %T %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error:\n%s\nwant it to start with:\n%s", err, c.want)
			}
			for _, secret := range env {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows %q: %s", secret, err)
				}
			}
		})
	}
}

// Settings the caller replaces (dev: its in-process broker) need not have their variables set;
// a block holding such a variable cannot be checked and is not, and everything else still is.
func TestUnusedSettings(t *testing.T) {
	unused := []string{"kafka.brokers", "kafka.security"}
	cases := []struct {
		name, kafka string
		unused      []string
		ignored     string // the variables ignored, or the expected diagnostic's path
		err         bool
	}{
		{"sasl credentials", "security: {protocol: SASL_SSL, sasl: {mechanism: PLAIN, username: ${U}, password: ${PW}}}", unused, "PW,U", false},
		{"brokers", "brokers: ${BROKERS}", unused, "BROKERS", false},
		{"brokers in a list", "brokers: [${B1}, 'h:1']", unused, "B1", false},
		{"protocol, whose placeholder the sasl check refuses", "security: {protocol: ${PROTO}, sasl: {mechanism: PLAIN, username: u, password: p}}", unused, "PROTO", false},
		{"a certificate file", "security: {protocol: SSL, tls: {ca_file: ${CA}}}", unused, "CA", false},
		{"a setting dev uses", "client_id: ${CID}", unused, "kafka.client_id", true},
		{"an invalid name", "security: {protocol: SASL_SSL, sasl: {mechanism: PLAIN, username: u, password: ${1PW}}}", unused, "kafka.security.sasl.password", true},
		{"a mistake without unset variables", "security: {protocol: SSL, sasl: {mechanism: PLAIN, username: u, password: ${SET}}}", unused, "kafka.security.sasl", true},
		{"validate and run use them all", "security: {protocol: SASL_SSL, sasl: {mechanism: PLAIN, username: u, password: ${PW}}}", nil, "kafka.security.sasl.password", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "version: 1\nname: t\nkafka: {" + c.kafka + "}\nsource: {type: kafka, topics: [in]}\nsinks: [{name: o, type: kafka, topic: out}]\n"
			env := func(k string) (string, bool) {
				if k == "SET" {
					return "set", true
				}
				return "", false
			}
			p, diags := Parse("p.yaml", []byte(src), Options{Env: env, BaseDir: t.TempDir(), Unused: c.unused})
			if c.err {
				if len(diags) != 1 || diags[0].Path != c.ignored {
					t.Fatalf("want one diagnostic on %s, got %v", c.ignored, diags.Err())
				}
				return
			}
			if len(diags) > 0 {
				t.Fatal(diags.Err())
			}
			if got := strings.Join(p.IgnoredVars, ","); got != c.ignored {
				t.Errorf("ignored %q, want %q", got, c.ignored)
			}
		})
	}
	// An unset variable outside the replaced settings is an error whatever the caller.
	src := "version: 1\nname: t\nkafka: {brokers: ${B}}\nsource: {type: kafka, topics: [in]}\nsinks: [{name: o, type: kafka, topic: ${T}}]\n"
	_, diags := Parse("p.yaml", []byte(src), Options{Env: func(string) (string, bool) { return "", false }, Unused: unused})
	if len(diags) != 1 || diags[0].Path != "sinks[0].topic" {
		t.Errorf("want one diagnostic on sinks[0].topic, got %v", diags.Err())
	}
}

// The graph draws conditions as written: a ${VAR} in one may hold a secret.
func TestGraphShowsConditionsAsWritten(t *testing.T) {
	src := header + `stages:
  - {name: f, type: filter, when: 'key != "${ADMIN_KEY}"'}
  - {name: b, type: branch, routes: [{when: 'key == "${VIP_KEY}"', to: o}, {to: o}]}
sinks: [{name: o, type: kafka, topic: out}]
`
	p, diags := parseString(t, src, map[string]string{"ADMIN_KEY": "adm1n-s3cr3t", "VIP_KEY": "v1p-s3cr3t"})
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	for name, write := range map[string]func(*strings.Builder) error{
		"dot":     func(b *strings.Builder) error { return p.WriteDOT(b) },
		"mermaid": func(b *strings.Builder) error { return p.WriteMermaid(b) },
	} {
		var b strings.Builder
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		if out := b.String(); strings.Contains(out, "s3cr3t") || !strings.Contains(out, "${ADMIN_KEY}") || !strings.Contains(out, "${VIP_KEY}") {
			t.Errorf("%s: want the conditions as written, got:\n%s", name, out)
		}
	}
}
