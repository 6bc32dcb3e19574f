package expr

import (
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

// What the type checker lets through is found by the read check: undeclared fields of open
// schemas, dropped fields, and optional fields where null fails.
func TestCheckReads(t *testing.T) {
	open := schemaOf(t, `{amount: float, note: "string?", n: "int?", user: {name: string, "*": any}, tags: "any?", "*": any}`)
	open = open.Without("secret", "stage slim (line 9)").With("opt", &Schema{Kind: Object, Optional: true, Fields: map[string]*Schema{"name": {Kind: String}}})
	cases := []struct {
		name, src string
		warn      string // the one warning wanted, "" for none
		err       string // the one error wanted, "" for none
	}{
		{"declared field", "msg.amount > 1", "", ""},
		{"misspelt field of an open schema", "msg.amout > 1", "msg.amout is not in the schema (did you mean msg.amount?); \"*\" lets it through unchecked", ""},
		{"undeclared field without a likely match", "msg.region == \"eu\"", "msg.region is not in the schema;", ""},
		{"misspelt nested field", `msg.user.nmae == "a"`, "msg.user.nmae is not in the schema (did you mean msg.user.name?)", ""},
		{"reported once however often read", "msg.amout > 1 && msg.amout < 5", "msg.amout is not in the schema", ""},
		{"no suggestion of the word itself", "msg.user.amount > 1", "msg.user.amount is not in the schema; \"*\" lets it through", ""},
		{"inside an any field", "msg.tags?.x == 1", "", ""},
		{"dropped field, open schema", "msg.secret == \"x\"", "", "msg.secret was dropped by stage slim (line 9): it is null from there on"},
		{"optional into a function", "upper(msg.note)", `msg.note may be null (its type is string?), and upper() fails on null: the record would go to the DLQ; write msg.note ?? "", or test msg.note != nil first`, ""},
		{"optional in arithmetic", "msg.n + 1 > 2", "msg.n may be null (its type is int?), and the operator + fails on null", ""},
		{"a member of an optional field", `upper(msg.opt.name)`, "msg.opt may be null (its type is {name: string}?), and reading a member of it fails on null", ""},
		{"through ?. past an optional field", `upper(msg.opt?.name)`, "msg.opt.name may be null (it is read through ?. past an optional field), and upper() fails", ""},
		{"declared field read through ?.", "msg.user?.name + \"x\"", "", ""},
		{"unknown field read through ?.", "msg.tags?.x + 1", "msg.tags.x may be null (it is read through ?.), and the operator + fails", ""},
		{"optional with ??", `upper(msg.note ?? "")`, "", ""},
		{"optional tested first", `msg.note != nil && upper(msg.note) == "A"`, "", ""},
		{"optional tested in a conditional", `msg.note == nil ? "" : upper(msg.note)`, "", ""},
		{"optional compared", `msg.note == "a" || msg.n != 3`, "", ""},
		{"optional into a null-safe function", `string(msg.note) + urlquery(msg.note)`, "", ""},
		{"optional with in", `msg.note in ["a", "b"]`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var diags diag.List
			p := Compile(exprValue(c.src), Env{Msg: open}, WantAny, &diags)
			errs, warnings := diags.Split()
			switch {
			case c.err != "":
				if p != nil || len(errs) != 1 || !strings.Contains(errs[0].Msg, c.err) {
					t.Fatalf("want the error %q, got %v", c.err, diags.Err())
				}
			case len(errs) > 0 || p == nil:
				t.Fatalf("want no error, got %v", diags.Err())
			case c.warn == "" && len(warnings) > 0:
				t.Fatalf("want no warning, got %v", warnings.Err())
			case c.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0].Msg, c.warn)):
				t.Fatalf("want the warning %q, got %v", c.warn, warnings.Err())
			}
		})
	}
}

// A read of a field with no schema to hold it to (a decode without one, an HTTP answer merged
// in) is not reported.
func TestCheckReadsUnchecked(t *testing.T) {
	for name, s := range map[string]*Schema{
		"no schema":     AnyMap().With("total", &Schema{Kind: Float}),
		"merged lookup": schemaOf(t, `{amount: float}`).Opened(),
	} {
		t.Run(name, func(t *testing.T) {
			var diags diag.List
			if p := Compile(exprValue("msg.score > 1"), Env{Msg: s}, WantAny, &diags); p == nil || len(diags) > 0 {
				t.Fatalf("got %v", diags.Err())
			}
		})
	}
}

// == and != with an optional string or int compare null as unequal at run time: expr-lang's
// opcodes for two strings or two ints would fail on it instead.
func TestOptionalEqualityAtRunTime(t *testing.T) {
	s := schemaOf(t, `{note: "string?", n: "int?", u: {name: string}}`)
	s.Fields["u"].Optional = true
	cases := []struct {
		src  string
		want bool
	}{
		{`msg.note == "a"`, false},
		{`msg.note != "a"`, true},
		{`"a" == msg.note`, false},
		{`msg.n == 1`, false},
		{`msg.n != 1`, true},
		{`msg.u?.name == "x"`, false},
		{`msg.note == nil`, true},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			var diags diag.List
			p := Compile(exprValue(c.src), Env{Msg: s}, WantBool, &diags)
			if p == nil {
				t.Fatal(diags.Err())
			}
			got, err := p.RunBool(Vars{"msg": map[string]any{}})
			if err != nil || got != c.want {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
			got, err = p.RunBool(Vars{"msg": map[string]any{"note": "a", "n": 1, "u": map[string]any{"name": "x"}}})
			if err != nil || got == c.want && c.src != `msg.note == nil` {
				t.Fatalf("present values: got %v, %v", got, err)
			}
		})
	}
}

// An unknown name that is a field of msg written without msg. is pointed to msg.field, and a
// dropped field's compile error says where it went.
func TestUnknownNameHints(t *testing.T) {
	env := Env{Msg: schemaOf(t, `{tenant: string, amount: float}`).Without("note", "stage slim (line 9)")}
	cases := []struct{ src, err string }{
		{`tenant == "a"`, "unknown name tenant (did you mean msg.tenant?)"},
		{`amout > 1`, "unknown name amout (did you mean msg.amount?)"},
		{`mgs.amount > 1`, "unknown name mgs (did you mean msg?)"},
		{`msg.note == "a"`, "unknown field note (it was dropped by stage slim (line 9))"},
		{`timestamp.Format(RFC3339)`, "unknown name RFC3339"}, // expr-lang's checker misses names in a method's arguments
		{`timestamp.Format(tenant)`, "unknown name tenant (did you mean msg.tenant?)"},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) { checkCompile(t, env, WantAny, c.src, "", c.err) })
	}
}

// A condition testing fields with != nil narrows the schema of what it lets through.
func TestNarrow(t *testing.T) {
	s := schemaOf(t, `{note: "string?", n: "int?", user: {name: "string?"}}`)
	s.Fields["user"].Optional = true
	cases := []struct{ src, want string }{
		{`msg.note != nil`, "{n: int?, note: string, user: {name: string?}?}"},
		{`msg.note != nil && nil != msg.n`, "{n: int, note: string, user: {name: string?}?}"},
		{`msg.user.name != nil and msg.note == "a"`, "{n: int?, note: string?, user: {name: string}}"},
		{`msg.note != nil || msg.n != nil`, "{n: int?, note: string?, user: {name: string?}?}"},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			var diags diag.List
			p := Compile(exprValue(c.src), Env{Msg: s}, WantBool, &diags)
			if p == nil {
				t.Fatal(diags.Err())
			}
			if got := p.Narrow(s).String(); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

// Where no decode comes before, msg is the body's bytes: reading a field of it is an error,
// using it whole is not.
func TestCheckRaw(t *testing.T) {
	cases := []struct {
		name, src string
		err       string // "" for none
	}{
		{"a field", "msg.amount > 0", "msg is still bytes here: no decode stage comes before, so msg.amount has no field to read (add a decode stage before it)"},
		{"a nested field, named by its first", `msg.user.name == "a"`, "so msg.user has no field"},
		{"a field by index", `msg["amount"] != nil`, "so msg.amount has no field"},
		{"through ?.", `msg?.amount ?? 0`, "so msg.amount has no field"},
		{"the first of several", "int(msg.b) + int(msg.a) > 0", "so msg.b has no field"},
		{"the bytes whole", `len(msg) > 0 && msg != nil`, ""},
		{"as a string", `string(msg) contains "x"`, ""},
		{"no msg", `key == "a"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var diags diag.List
			p := Compile(exprValue(c.src), Env{Raw: true}, WantAny, &diags)
			switch {
			case c.err == "" && (p == nil || len(diags) > 0):
				t.Fatalf("want no diagnostic, got %v", diags.Err())
			case c.err != "" && (p != nil || len(diags) != 1 || !strings.Contains(diags[0].Msg, c.err)):
				t.Fatalf("want the error %q, got %v", c.err, diags.Err())
			}
		})
	}
}
