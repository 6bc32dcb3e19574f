package record

import (
	"reflect"
	"strings"
	"testing"
)

func TestDecodeJSONReading(t *testing.T) {
	unreadNote := func(f string) bool { return f == "note" || f == "items" }
	cases := []struct {
		name, in string
		want     any
	}{
		{"an unread field is kept as written", `{"amount": 5, "note" : "caf\u00e9 <b>" }`,
			map[string]any{"amount": 5, "note": Raw(`"caf\u00e9 <b>"`)}},
		{"an unread object or list is kept whole, without its spaces", `{"items":[{"a":1}, 2.5e3 ,null,true,false,{}],"a":{"note":1}}`,
			map[string]any{"items": Raw(`[{"a":1},2.5e3,null,true,false,{}]`), "a": map[string]any{"note": 1}}},
		{"only top-level fields", `{"a":{"note":"x"}}`, map[string]any{"a": map[string]any{"note": "x"}}},
		{"a body that is not an object", `["note"]`, []any{"note"}},
		{"the last of duplicates", `{"note":1,"note":"two"}`, map[string]any{"note": Raw(`"two"`)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeJSONReading([]byte(c.in), unreadNote)
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, c.want)
			}
		})
	}
}

// TestRawWritesAsWritten: a Raw field is copied into the body's JSON as it came, less spaces.
func TestRawWritesAsWritten(t *testing.T) {
	v, err := DecodeJSONReading([]byte(`{"b":2,"a":[1, "x< y"]}`), func(f string) bool { return f == "a" })
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendJSON(nil, v)
	if want := `{"a":[1,"x< y"],"b":2}`; err != nil || string(got) != want {
		t.Fatalf("got %s, %v; want %s", got, err, want)
	}
}

// FuzzDecodeJSONReading: skipping a field fails exactly where decoding it fails, with the same
// error, and a Raw field decodes to what decoding the body gives for it.
func FuzzDecodeJSONReading(f *testing.F) {
	for _, seed := range []string{`{"a": [1, 2.5, -0, 1e400, "x\u00e9\ud83d\ude00", true, null, {"b": {}}]}`,
		`{"a": "\ud800\u0041"}`, `{"a": -}`, `{"a": 01}`, `{"a": 1.}`, `{"a": [1,]}`, `{"a": {"b" 1}}`, `{"a": nul}`,
		"{\"a\": \"a\xffb\"}", `{"a": "\x"}`, `{"a": "\u12G4"}`, "{\"a\": \"\x01\"}", `{"a": "abc`, `{"a": [[[`, `{"a":1,"b":2} x`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := DecodeJSON(data)
		got, err := DecodeJSONReading(data, func(string) bool { return true })
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("%q: skipping gives %v; decoding %v", data, err, werr)
		}
		if err != nil {
			return
		}
		m, ok := got.(map[string]any)
		if !ok {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: %#v; want %#v", data, got, want)
			}
			return
		}
		for k, v := range m {
			raw, ok := v.(Raw)
			if !ok {
				t.Fatalf("%q: field %q is %T, not Raw", data, k, v)
			}
			if x, err := DecodeJSON(raw); err != nil || !reflect.DeepEqual(x, want.(map[string]any)[k]) {
				t.Fatalf("%q: field %q kept as %s, which decodes to %#v, %v; want %#v", data, k, raw, x, err, want.(map[string]any)[k])
			}
		}
	})
}

// plainRun finds what a byte-by-byte scan finds, wherever in the eight-byte words it is.
func TestPlainRun(t *testing.T) {
	naive := func(data []byte, i int) int {
		for ; i < len(data); i++ {
			if c := data[i]; c == '"' || c == '\\' || c < 0x20 {
				return i
			}
		}
		return i
	}
	cases := []struct {
		name string
		b    byte
	}{
		{"a quote", '"'}, {"a backslash", '\\'}, {"a NUL", 0}, {"a control byte", 0x1f},
		{"a space is plain", ' '}, {"DEL is plain", 0x7f}, {"a UTF-8 byte is plain", 0x80}, {"0xff is plain", 0xff},
		{"the byte after a quote is plain", '#'}, {"the byte after a backslash is plain", ']'},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for n := 0; n <= 20; n++ {
				for at := 0; at <= n; at++ {
					data := []byte(strings.Repeat("é-x", 7))[:n+1]
					data[at] = c.b
					for from := 0; from <= at; from++ {
						if got, want := plainRun(data, from), naive(data, from); got != want {
							t.Fatalf("%q from %d: %d, want %d", data, from, got, want)
						}
					}
				}
			}
		})
	}
}
