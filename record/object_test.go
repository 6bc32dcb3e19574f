package record

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// objectCorpus are bodies whose lazy Object must encode and materialize as the map
// DecodeJSONReading makes: escapes, duplicate keys, nested values, numbers as written.
var objectCorpus = []struct{ name, body string }{
	{"orders", `{"order_id":"o1","customer_id":"c1","amount":12.5,"region":"eu","note":"some text"}`},
	{"empty", `{}`},
	{"spaces", " { \"b\" : 1 ,\n\t\"a\" : [ 1 , 2 , { \"y\" : 2 , \"x\" : 1 } ] , \"note\" : { \"z\" : \" a b \" , \"a\" : null } } "},
	{"escaped strings", `{"s":"a\"b\\c\/d\n\u00e9\ud83d\ude00","note":"\u003c\n"}`},
	{"escaped keys", `{"a\u0062":1,"\u003ckey\u003e":2,"ab":3,"note\t":"x"}`},
	{"html", `{"h":"<b>&amp;</b>","note":"<i>"}`},
	{"line separators", "{\"s\":\"a\u2028b\u2029c\",\"note\":\"\u2028\"}"},
	{"non-ASCII", `{"s":"héllo wörld, 日本語 text here","note":"ça"}`},
	{"duplicates", `{"a":1,"b":2,"a":"three","note":4,"note":"five"}`},
	{"numbers", `{"i":-0,"j":0,"k":-12,"f":1.50,"g":1e2,"h":1E-7,"big":12345678901234567890,"huge":1e400,"tiny":-1e-400,"max":9223372036854775807,"note":1.50}`},
	{"literals", `{"t":true,"f":false,"n":null,"note":null}`},
	{"nested", `{"card":{"z":1,"bin":"4111","a":{"c":[3,2,1],"b":2}},"list":[{"b":1,"a":2}],"note":{"b":1,"a":2}}`},
	{"empty containers", `{"o":{},"l":[],"s":"","note":[]}`},
	{"sort", `{"b":1,"a":2,"B":3,"_":4,"aa":5,"":6,"a b":7}`},
}

// unreadNote is a pipeline in which no expression reads note.
func unreadNote(field string) bool { return field == "note" }

func TestObjectAsMap(t *testing.T) {
	for _, c := range objectCorpus {
		t.Run(c.name, func(t *testing.T) {
			for _, unread := range []func(string) bool{nil, unreadNote} {
				lazy, want := decodeBoth(t, []byte(c.body), unread)
				o, ok := lazy.(*Object)
				if !ok {
					t.Fatalf("DecodeLazy gave %T, not an *Object", lazy)
				}
				if got := o.Map(); !reflect.DeepEqual(got, want) {
					t.Errorf("Map:\n got %#v\nwant %#v", got, want)
				}
				sameJSON(t, o, want)
			}
		})
	}
}

// decodeBoth decodes body lazily and into a map, as a decode stage would either way.
func decodeBoth(t *testing.T, body []byte, unread func(string) bool) (any, any) {
	t.Helper()
	lazy, err := NewDecoder(unread, 4).DecodeLazy(body)
	if err != nil {
		t.Fatal(err)
	}
	want, err := NewDecoder(unread, 4).Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	return lazy, want
}

// sameJSON checks that o encodes as the map want does.
func sameJSON(t *testing.T, o *Object, want any) {
	t.Helper()
	got, err := AppendJSON(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	w, err := AppendJSON(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, w) {
		t.Errorf("AppendJSON:\n got %s\nwant %s", got, w)
	}
}

func TestObjectChanges(t *testing.T) {
	body := []byte(`{"a":1,"b":"two","c":{"d":[1,2]},"note":"x"}`)
	cases := []struct {
		name   string
		change func(set func(string, any), del func(string))
	}{
		{"set an existing field", func(set func(string, any), _ func(string)) { set("a", 2.5) }},
		{"set a new field", func(set func(string, any), _ func(string)) { set("total", "x<y") }},
		{"set twice", func(set func(string, any), _ func(string)) { set("z", 1); set("z", map[string]any{"k": []any{1}}) }},
		{"delete", func(_ func(string, any), del func(string)) { del("b"); del("missing") }},
		{"delete a set field", func(set func(string, any), del func(string)) { set("z", 1); del("z"); set("z", 2) }},
		{"delete then set", func(set func(string, any), del func(string)) { del("a"); set("a", nil) }},
		{"set the unread field", func(set func(string, any), _ func(string)) { set("note", "y") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lazy, plain := decodeBoth(t, body, unreadNote)
			o, m := lazy.(*Object), plain.(map[string]any)
			c.change(o.Set, o.Delete)
			c.change(func(k string, v any) { m[k] = v }, func(k string) { delete(m, k) })
			if got := o.Map(); !reflect.DeepEqual(got, m) {
				t.Errorf("Map:\n got %#v\nwant %#v", got, m)
			}
			sameJSON(t, o, m)
			if o.Len() != len(m) {
				t.Errorf("Len %d, want %d", o.Len(), len(m))
			}
			for i := range o.Len() {
				if got, _ := o.Get(o.Name(i)); !reflect.DeepEqual(got, m[o.Name(i)]) && o.Name(i) != "note" {
					t.Errorf("Get(%q) = %#v, want %#v", o.Name(i), got, m[o.Name(i)])
				}
			}
		})
	}
}

func TestObjectCopy(t *testing.T) {
	lazy, _ := decodeBoth(t, []byte(`{"a":1,"b":2}`), nil)
	o := lazy.(*Object)
	o.Set("c", map[string]any{"x": 1})
	c := DeepCopy(o).(*Object)
	c.Set("a", 5)
	c.Delete("b")
	inner, _ := c.Get("c")
	inner.(map[string]any)["x"] = 2
	got, _ := AppendJSON(nil, o)
	if string(got) != `{"a":1,"b":2,"c":{"x":1}}` {
		t.Errorf("the original changed with its copy: %s", got)
	}
}

func TestDecodeLazyNotAnObject(t *testing.T) {
	for _, body := range []string{`[1]`, `"s"`, `1`, `null`} {
		v, err := NewDecoder(nil, 0).DecodeLazy([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if _, lazy := v.(*Object); lazy {
			t.Errorf("%s: an Object", body)
		}
	}
	var wide bytes.Buffer
	wide.WriteString(`{"k0":0`)
	for i := 1; i <= maxLazyFields; i++ {
		fmt.Fprintf(&wide, `,"k%d":%d`, i, i)
	}
	wide.WriteString(`}`)
	v, err := NewDecoder(nil, 0).DecodeLazy(wide.Bytes())
	if m, ok := v.(map[string]any); err != nil || !ok || len(m) != maxLazyFields+1 {
		t.Errorf("%d fields: %T, %v; want a map", maxLazyFields+1, v, err)
	}
}

// FuzzDecodeLazy checks that a lazy Object is what the map decoder makes of the same body:
// the same error, or the same map and encoding.
func FuzzDecodeLazy(f *testing.F) {
	for _, c := range objectCorpus {
		f.Add([]byte(c.body))
	}
	f.Add([]byte(`{"a":1,"a":}`))
	f.Add([]byte(`{"a":"\ud800"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, unread := range []func(string) bool{nil, unreadNote} {
			lazy, lerr := NewDecoder(unread, 4).DecodeLazy(body)
			want, werr := NewDecoder(unread, 4).Decode(body)
			if (lerr == nil) != (werr == nil) || (lerr != nil && lerr.Error() != werr.Error()) {
				t.Fatalf("errors differ: lazy %v, map %v", lerr, werr)
			}
			var je, we *JSONError
			if errors.As(lerr, &je) && errors.As(werr, &we) && je.Offset != we.Offset {
				t.Fatalf("offsets differ: lazy %d, map %d", je.Offset, we.Offset)
			}
			if lerr != nil {
				continue
			}
			o, ok := lazy.(*Object)
			if !ok {
				if !reflect.DeepEqual(lazy, want) {
					t.Fatalf("not an object: lazy %#v, map %#v", lazy, want)
				}
				continue
			}
			if got := o.Map(); !reflect.DeepEqual(got, want) {
				t.Fatalf("Map:\n got %#v\nwant %#v", got, want)
			}
			sameJSON(t, o, want)
		}
	})
}
