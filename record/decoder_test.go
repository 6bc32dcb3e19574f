package record

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// A Decoder reads what DecodeJSONReading reads, value for value and error for error: sharing
// the body's bytes changes where strings live, not what they hold.
func TestDecoderAgrees(t *testing.T) {
	unread := func(f string) bool { return f == "note" }
	cases := []struct{ name, in string }{
		{"an orders body", `{"order_id":"o1","customer_id":"c1","amount":12.5,"region":"eu","note":"x y"}`},
		{"escaped strings and keys", `{"a\"b":"c\\d\u00e9","\u0041":"\ud83d\ude00","e":"\ud83dx"}`},
		{"empty strings and key", `{"":"","a":[""]}`},
		{"numbers kept as written", `{"big":12345678901234567890,"huge":1e400,"tiny":-1e-400,"exact":9007199254740993}`},
		{"floats", `{"a":0.1,"b":-0.0,"c":1.5e300,"d":1E-7}`},
		{"lists of objects", `{"items":[{"sku":"a","qty":1},{"sku":"b","qty":2.5}]}`},
		{"an unread field with spaces", `{ "note" : [ 1 , "two" ] , "a" : 1 }`},
		{"an unread field with escapes", `{"note":"caf\u00e9","a":"b"}`},
		{"no fields", `{}`},
		{"a list at the top", `["note",1,{"note":2}]`},
		{"a string at the top", `"plain"`},
		{"a number at the top", `-12.25e1`},
		{"a syntax error", `{"a": 1,}`},
		{"a syntax error in an unread field", `{"note": [1 2]}`},
		{"cut short in a key", `{"ab`},
		{"invalid UTF-8", "{\"a\": \"\xff\"}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, werr := DecodeJSONReading([]byte(c.in), unread)
			got, err := NewDecoder(unread, 0).Decode([]byte(c.in))
			if fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("Decoder: %#v, %v\nDecodeJSONReading: %#v, %v", got, err, want, werr)
			}
		})
	}
}

// within reports whether s lies in the bytes of data.
func within(s string, data []byte) bool {
	p, start := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	return len(s) > 0 && p >= start && p+uintptr(len(s)) <= start+uintptr(len(data))
}

// A Decoder's strings and keys without escapes are the body's bytes, not copies; a string
// with escapes is built apart, and DecodeJSON copies every one.
func TestDecoderSharesTheBody(t *testing.T) {
	data := []byte(`{"plain":"abc","escaped":"a\nb","big":12345678901234567890,"list":["x"]}`)
	v, err := NewDecoder(nil, 0).Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	cases := []struct {
		name   string
		s      string
		shared bool
	}{
		{"a key", keyOf(m, "plain"), true},
		{"a string", m["plain"].(string), true},
		{"a string with an escape", m["escaped"].(string), false},
		{"a number kept as written", string(m["big"].(json.Number)), true},
		{"a string in a list", m["list"].([]any)[0].(string), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if within(c.s, data) != c.shared {
				t.Fatalf("%q shares the body: %v, want %v", c.s, !c.shared, c.shared)
			}
		})
	}
	copied, _ := DecodeJSON(data)
	for k, x := range copied.(map[string]any) {
		if s, ok := x.(string); within(k, data) || (ok && within(s, data)) {
			t.Errorf("DecodeJSON shares the body's bytes in %q: %q", k, s)
		}
	}
}

// keyOf is m's key equal to name, as the map holds it.
func keyOf(m map[string]any, name string) string {
	for k := range m {
		if k == name {
			return k
		}
	}
	return ""
}

// A Decoder makes a top-level object at the size of the last one (its schema's to begin
// with), and stores it only when it changes.
func TestDecoderSizesObjects(t *testing.T) {
	dec := NewDecoder(nil, 4)
	cases := []struct {
		name string
		body string
		want int32
	}{
		{"the schema's count until a body is read", ``, 4},
		{"a body of 3 fields", `{"a":1,"b":2,"c":3}`, 3},
		{"nested objects do not count", `{"a":{"x":1,"y":2,"z":3,"w":4,"v":5}}`, 1},
		{"a list at the top leaves it", `[{"a":1,"b":2}]`, 1},
		{"an empty object", `{}`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.body != "" {
				if _, err := dec.Decode([]byte(c.body)); err != nil {
					t.Fatal(err)
				}
			}
			if got := dec.fields.Load(); got != c.want {
				t.Fatalf("size hint %d, want %d", got, c.want)
			}
		})
	}
}

// A Decoder is shared by a stage's workers.
func TestDecoderConcurrent(t *testing.T) {
	dec := NewDecoder(func(f string) bool { return f == "note" }, 0)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				body := fmt.Appendf(nil, `{"w":%d,"i":%d,"s":"x%d","note":"n"%s}`, w, i, i, strings.Repeat(`,"f":1`, i%12))
				v, err := dec.Decode(body)
				if m, ok := v.(map[string]any); err != nil || !ok || m["i"] != i || m["s"] != fmt.Sprint("x", i) || string(m["note"].(Raw)) != `"n"` {
					t.Errorf("%s: %#v, %v", body, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A long document's keys are interned once it has more than internAfter of them: the same
// name is one string, whatever object holds it; values are as ever.
func TestDecodeJSONInternsKeys(t *testing.T) {
	rows := make([]string, 100)
	for i := range rows {
		rows[i] = fmt.Sprintf(`{"id":%d,"name":"n%d","na\u006de2":"x"}`, i, i)
	}
	data := []byte("[" + strings.Join(rows, ",") + "]")
	v, err := DecodeJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := decodeReference(data)
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %#v, want %#v", v, want)
	}
	list := v.([]any)
	cases := []struct {
		name     string
		key      string
		a, b     int // two rows
		interned bool
	}{
		{"early rows: not yet", "id", 0, 1, false},
		{"later rows: one string", "id", 50, 99, true},
		{"a key with escapes: built, then the first one kept", "name2", 50, 99, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ka, kb := keyOf(list[c.a].(map[string]any), c.key), keyOf(list[c.b].(map[string]any), c.key)
			if same := unsafe.StringData(ka) == unsafe.StringData(kb); same != c.interned {
				t.Fatalf("rows %d and %d share %q: %v, want %v", c.a, c.b, c.key, same, c.interned)
			}
		})
	}
}

// FuzzDecoder: a Decoder and DecodeJSONReading agree on every document.
func FuzzDecoder(f *testing.F) {
	for _, seed := range []string{`{"a":"x","note":[1, {"b":"\u00e9"}],"c":1e400}`, `{"a\"":1}`, `{"note":`, `[{"a":1},{"a":2}]`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(seed))
	}
	unread := func(f string) bool { return f == "note" }
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := DecodeJSONReading(data, unread)
		got, err := NewDecoder(unread, 0).Decode(data)
		if fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: Decoder %#v, %v; DecodeJSONReading %#v, %v", data, got, err, want, werr)
		}
	})
}
