package diag

import (
	"bytes"
	"testing"
)

func TestPrint(t *testing.T) {
	src := Sources{"p.yaml": []byte("a: 1\n\twhen: msg.x > 0\n")}
	l := List{
		{Pos: Pos{File: "p.yaml", Line: 2, Col: 12}, Path: "when", Msg: "unknown field x"},
		{Pos: Pos{File: "p.yaml"}, Msg: "file-level"},
	}
	l.Sort()
	var out bytes.Buffer
	Print(&out, l, src)
	want := "p.yaml: file-level\n" +
		"p.yaml:2:12: when: unknown field x\n" +
		" 2 |  when: msg.x > 0\n" +
		"   |            ^\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestSortDedups(t *testing.T) {
	d := Diagnostic{Pos: Pos{File: "f", Line: 1, Col: 1}, Msg: "m"}
	l := List{d, {Pos: Pos{File: "f", Line: 0}, Msg: "a"}, d}
	l.Sort()
	if len(l) != 2 || l[0].Msg != "a" {
		t.Errorf("got %v", l)
	}
}

func TestSuggest(t *testing.T) {
	cases := []struct {
		word  string
		cands []string
		want  string
	}{
		{"ammount", []string{"amount", "region"}, "amount"},
		{"strat", []string{"start", "stages"}, "start"},
		{"whne", []string{"when", "name"}, "when"},
		{"x", []string{"amount"}, ""},
		{"completely", []string{"different"}, ""},
		{"earlist", []string{"earliest", "latest"}, "earliest"},
		{"tenant", []string{"tenant", "tenants"}, "tenants"}, // never the word itself
		{"tenant", []string{"tenant"}, ""},
	}
	for _, c := range cases {
		if got := Suggest(c.word, c.cands); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}

func TestCount(t *testing.T) {
	e, w := Diagnostic{Msg: "e"}, Diagnostic{Msg: "w", Warning: true}
	cases := []struct {
		name string
		l    List
		want string
	}{
		{"one error", List{e}, "1 error"},
		{"errors", List{e, e, e}, "3 errors"},
		{"and a warning", List{e, w}, "1 error and 1 warning"},
		{"and warnings", List{w, e, e, w}, "2 errors and 2 warnings"},
	}
	for _, c := range cases {
		if got := c.l.Count(); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
