package expr

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// A null key, a missing header and a header with a null value are nil; an empty key or
// header is "". Expressions written for string keys and headers still compile and run.
func TestNullKeyAndHeaders(t *testing.T) {
	null := &record.Record{Headers: []record.Header{{Key: "h", Value: []byte("v")}, {Key: "n", Value: nil}, {Key: "e", Value: []byte{}}}}
	empty := &record.Record{Key: []byte{}}
	keyed := &record.Record{Key: []byte("k1")}
	cases := []struct {
		name string
		rec  *record.Record
		src  string
		want any
		err  string
	}{
		{"null key is nil", null, "key == nil", true, ""},
		{"null key takes a default", null, `key ?? "none"`, "none", ""},
		{"null key is not a string", null, `key == "k1"`, false, ""},
		{"null key in string functions fails", null, `upper(key)`, nil, "interface conversion"},
		{"null key concatenated fails", null, `key + "x"`, nil, "invalid operation: <nil> + string"},
		{"empty key is not nil", empty, "key == nil", false, ""},
		{"empty key is empty", empty, `key == ""`, true, ""},
		{"key compares", keyed, `key == "k1"`, true, ""},
		{"key concatenates", keyed, `key + "x"`, "k1x", ""},
		{"key in string functions", keyed, `upper(key) + lower("X")`, "K1x", ""},
		{"key with string operators", keyed, `key startsWith "k" && key matches "^k[0-9]$" && len(key) == 2`, true, ""},
		{"key default unused", keyed, `key ?? "none"`, "k1", ""},
		{"missing header takes a default", null, `headers["x"] ?? "none"`, "none", ""},
		{"missing header is nil", null, `headers["x"] == nil`, true, ""},
		{"null header is nil", null, `headers["n"] ?? "none"`, "none", ""},
		{"empty header is empty", null, `headers["e"] ?? "none"`, "", ""},
		{"header compares", null, `headers["h"] == "v"`, true, ""},
		{"header concatenates", null, `headers["h"] + "x"`, "vx", ""},
		{"header as a field", null, `headers.h`, "v", ""},
		{"missing header compares false", null, `headers["x"] == "a"`, false, ""},
		{"tombstone body is nil before decode", null, `msg == nil`, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var diags diag.List
			p := Compile(exprValue(c.src), Env{}, WantAny, &diags)
			if p == nil {
				t.Fatal(diags.Err())
			}
			b := NewBinder(p)
			vars := b.Bind(c.rec)
			defer b.Release(vars)
			out, err := p.Run(vars)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("want an error with %q, got %v, %v", c.err, out, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(out, c.want) {
				t.Fatalf("got %#v, %v; want %#v", out, err, c.want)
			}
		})
	}
}
