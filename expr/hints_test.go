package expr

import (
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

// Where expr-lang's message is a parser's, the likely intended form is named (the golden files
// in testdata/bad show where).
func TestCompileHints(t *testing.T) {
	msg := &Schema{Kind: Object, Fields: map[string]*Schema{"region": {Kind: String}, "id": {Kind: Int}}}
	cases := []struct {
		name, src string
		want      string
	}{
		{"= for ==", `msg.region = "eu"`, `unexpected token Operator("=") (did you mean ==?)`},
		{"a misspelt function", `lowr(msg.region) == "eu"`, "unknown name lowr (did you mean lower?)"},
		{"a misspelt function of ours", `urlqery(msg.region)`, "unknown name urlqery (did you mean urlquery?)"},
		{"a misspelt variable still", `kye == "a"`, "unknown name kye (did you mean key?)"},
		{"a bare URL", `https://api.example.com/v1/orders`, `: this field is an expression, in which a URL is a string literal: write '"https://api.example.com/v1/orders"'`},
		{"a bare URL with fields", `http://svc/orders/{msg.id}/x?region={ msg.region }&y=1`,
			`write '"http://svc/orders/" + urlpath(msg.id) + "/x?region=" + urlquery(msg.region) + "&y=1"'`},
		{"a bare URL ending in a field", `http://svc/o/{msg.id}`, `write '"http://svc/o/" + urlpath(msg.id)'`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var diags diag.List
			if p := Compile(exprValue(c.src), Env{Msg: msg}, WantAny, &diags); p != nil || len(diags) != 1 {
				t.Fatalf("want one error, got %v", diags.Err())
			}
			if !strings.Contains(diags[0].Msg, c.want) {
				t.Errorf("got %q, want it to hold %q", diags[0].Msg, c.want)
			}
		})
	}
}
