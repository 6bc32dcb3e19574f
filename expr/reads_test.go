package expr

import (
	"slices"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

func TestReads(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"fields", `"http://x/?a=" + msg.account + "&n=" + string(msg.amount)`, []string{"msg.account", "msg.amount"}},
		{"nested, the longest kept", `msg.card.bin + msg.card?.country`, []string{"msg.card.bin", "msg.card.country"}},
		{"index", `msg["account"] + headers["x-tenant"]`, []string{"headers.x-tenant", "msg.account"}},
		{"computed name reads all", `msg[msg.field]`, []string{"msg", "msg.field"}},
		{"variables", `key + topic + string(partition)`, []string{"key", "partition", "topic"}},
		{"inside functions", `urlquery(lower(msg.a))`, []string{"msg.a"}},
		{"nothing", `"constant"`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var diags diag.List
			p := Compile(exprValue(c.src), Env{}, WantAny, &diags)
			if p == nil {
				t.Fatal(diags.Err())
			}
			if got := p.Reads(); !slices.Equal(got, c.want) {
				t.Errorf("reads %v, want %v", got, c.want)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	cases := []struct {
		outer, inner string
		want         bool
	}{
		{"msg", "msg.a", true},
		{"msg.a", "msg.a", true},
		{"msg.a", "msg.a.b", true},
		{"msg.a", "msg.ab", false},
		{"msg.a.b", "msg.a", false},
		{"key", "msg", false},
	}
	for _, c := range cases {
		if got := Covers(c.outer, c.inner); got != c.want {
			t.Errorf("Covers(%q, %q) = %v", c.outer, c.inner, got)
		}
	}
}
