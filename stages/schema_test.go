package stages

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// A decode schema reads as the shape it writes, and every mistake in it is reported at its
// place, with the schema's default (any) standing in so that checks downstream go on.
func TestParseSchema(t *testing.T) {
	for _, c := range []struct{ text, want, err string }{
		{`{id: int, tags: [string], note: "string?", user: {name: string}, "*": any}`, "{id: int, note: string?, tags: [string], user: {name: string}, *: any}", ""},
		{`["int?"]`, "[int?]", ""},
		{`{"after?": {id: int}, "tags?": [string], "n?": int, "m?": "int?"}`, "{after: {id: int}?, m: int?, n: int?, tags: [string]?}", ""},
		{`{"a?": int, a: string}`, "{a: string}", `schema.a: duplicate field "a"`},
		{`{"?": int}`, "{?: int}", ""},
		{"{a: flaot}", "{a: any}", `schema.a: unknown type "flaot": use one of any, bool, bytes, float, int, string, time, [type] or a mapping (did you mean float?)`},
		{"{a: [int, string]}", "{a: [any]}", "schema.a: a list type has exactly one element type, like [string]"},
		{"{a: }", "{a: any}", "schema.a: missing type"},
		{"{a: int, a: string}", "{a: string}", `schema.a: duplicate field "a"`},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(c.text), &doc); err != nil {
			t.Fatal(err)
		}
		var diags diag.List
		s := parseSchema(&spec.Parser{File: "t", Diags: &diags}, &doc, "schema")
		if got := s.String(); got != c.want {
			t.Errorf("%s: read as %s, want %s", c.text, got, c.want)
		}
		switch {
		case c.err == "" && len(diags) > 0:
			t.Errorf("%s: %v", c.text, diags.Err())
		case c.err != "" && (len(diags) != 1 || !strings.Contains(diags[0].Path+": "+diags[0].Msg, c.err)):
			t.Errorf("%s: got %v, want %q", c.text, diags.Err(), c.err)
		}
	}
}
