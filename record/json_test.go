package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"unicode/utf8"
)

func TestDecodeJSONNumbers(t *testing.T) {
	cases := []struct {
		name, in string
		want     any
	}{
		{"small int", `42`, 42},
		{"negative int", `-7`, -7},
		{"2^53 + 1 stays exact", `9007199254740993`, 9007199254740993},
		{"int64 max", `9223372036854775807`, math.MaxInt64},
		{"int64 min", `-9223372036854775808`, math.MinInt64},
		{"beyond int64 kept as written", `12345678901234567890`, json.Number("12345678901234567890")},
		{"below int64 kept as written", `-9223372036854775809`, json.Number("-9223372036854775809")},
		{"fraction", `0.1`, 0.1},
		{"whole with a fraction is a float", `1.0`, 1.0},
		{"exponent", `1.5e300`, 1.5e300},
		{"integer with an exponent is a float", `1e3`, 1000.0},
		{"beyond float64 kept as written", `1e400`, json.Number("1e400")},
		{"negative beyond float64 kept as written", `-1e400`, json.Number("-1e400")},
		{"below float64 kept as written", `1e-400`, json.Number("1e-400")},
		{"zero with an exponent is zero", `0e-400`, 0.0},
		{"negative zero", `-0.0`, math.Copysign(0, -1)},
		{"nested in objects and lists", `{"a": {"b": [1, 2.5, 12345678901234567890, {"c": -3}]}}`,
			map[string]any{"a": map[string]any{"b": []any{1, 2.5, json.Number("12345678901234567890"), map[string]any{"c": -3}}}}},
		{"list at the top", `[9007199254740993, null, "x", true]`, []any{9007199254740993, nil, "x", true}},
		{"trailing whitespace", "{\"a\": 1} \r\n\t", map[string]any{"a": 1}},
		{"escapes", `"a\"\\\/\b\f\n\r\t\u00e9\u20AC"`, "a\"\\/\b\f\n\r\té€"},
		{"a surrogate pair", `"\ud83d\ude00"`, "😀"},
		{"a lone high surrogate", `"\ud83dx"`, "\ufffdx"},
		{"a high surrogate and a plain escape", `"\ud83d\u0041"`, "\ufffdA"},
		{"a lone low surrogate", `"\ude00"`, "\ufffd"},
		{"duplicate keys: the last wins", `{"a": 1, "a": 2}`, map[string]any{"a": 2}},
		{"empty containers", `{"a": {}, "b": []}`, map[string]any{"a": map[string]any{}, "b": []any{}}},
		{"literals", `[true, false, null]`, []any{true, false, nil}},
		{"18 digits", `-999999999999999999`, -999999999999999999},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeJSON([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
			if f, ok := c.want.(float64); ok && math.Signbit(f) != math.Signbit(got.(float64)) {
				t.Fatalf("sign lost: got %v", got)
			}
		})
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	cases := []struct {
		name, in, msg string
		offset        int64
		utf8          bool
	}{
		{"empty", ``, "unexpected end of JSON input", 0, false},
		{"cut short", `{"id": 1,`, "unexpected end of JSON input", 9, false},
		{"syntax", `{"id": oops}`, "invalid character 'o' looking for beginning of value", 7, false},
		{"data after the value", `{"id": 1} x`, "invalid character 'x' after top-level value", 10, false},
		{"a second value", `1 2`, "invalid character '2' after top-level value", 2, false},
		{"key not a string", `{1: 2}`, "invalid character '1' looking for beginning of object key string", 1, false},
		{"no colon", `{"a" 1}`, "invalid character '1' after object key", 5, false},
		{"no comma in an object", `{"a": 1 "b": 2}`, "invalid character '\"' after object key:value pair", 8, false},
		{"no comma in a list", `[1 2]`, "invalid character '2' after array element", 3, false},
		{"trailing comma", `[1,]`, "invalid character ']' looking for beginning of value", 3, false},
		{"leading zero", `01`, "invalid character '1' after top-level value", 1, false},
		{"bare minus", `-x`, "invalid character 'x' in numeric literal", 1, false},
		{"bare point", `1.e3`, "invalid character 'e' after decimal point in numeric literal", 2, false},
		{"bare exponent", `1e+`, "unexpected end of JSON input", 3, false},
		{"bad exponent", `1ex`, "invalid character 'x' in exponent of numeric literal", 2, false},
		{"bad literal", `[tru]`, "invalid character ']' in literal true (expecting 'e')", 4, false},
		{"control character in a string", "\"a\tb\"", "invalid character '\\t' in string literal", 2, false},
		{"bad escape", `"\x"`, "invalid character 'x' in string escape code", 2, false},
		{"bad unicode escape", `"\u12g4"`, "invalid character 'g' in \\u hexadecimal character escape", 5, false},
		{"unterminated string", `"abc`, "unexpected end of JSON input", 4, false},
		{"non-ASCII where it does not belong", `[é]`, "invalid character 'é' looking for beginning of value", 1, false},
		{"invalid UTF-8 in a string", "{\"name\": \"caf\xe9\"}", "invalid UTF-8 at byte 13", 13, true},
		{"a cut UTF-8 sequence", "[\"\xe2\x82\"]", "invalid UTF-8 at byte 2", 2, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := DecodeJSON([]byte(c.in))
			var je *JSONError
			if !errors.As(err, &je) {
				t.Fatalf("want a JSONError, got %v, %v", v, err)
			}
			if err.Error() != c.msg || je.Offset != c.offset {
				t.Errorf("got %q at %d, want %q at %d", err, je.Offset, c.msg, c.offset)
			}
			if errors.Is(err, ErrInvalidUTF8) != c.utf8 {
				t.Errorf("errors.Is(err, ErrInvalidUTF8) = %v", !c.utf8)
			}
		})
	}
}

// TestDecodeJSONRoundTrip re-encodes what DecodeJSON read, as sinks do with encoding/json.
func TestDecodeJSONRoundTrip(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"2^53 + 1", `9007199254740993`, `9007199254740993`},
		{"beyond int64", `12345678901234567890`, `12345678901234567890`},
		{"int64 min", `-9223372036854775808`, `-9223372036854775808`},
		{"beyond float64", `1e400`, `1e400`},
		{"a tenth", `0.1`, `0.1`},
		{"large float", `1.5e300`, `1.5e+300`},
		{"nested", `{"a":[9007199254740993,{"b":12345678901234567890}],"c":0.1}`, `{"a":[9007199254740993,{"b":12345678901234567890}],"c":0.1}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := DecodeJSON([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(v)
			if err != nil || string(out) != c.want {
				t.Fatalf("got %s, %v; want %s", out, err, c.want)
			}
		})
	}
}

// decodeReference is DecodeJSON done with encoding/json: a Decoder with UseNumber, then
// each number through Number. FuzzDecodeJSON holds the parser to it.
func decodeReference(data []byte) (any, error) {
	if !utf8.Valid(data) {
		return nil, ErrInvalidUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, errors.New("data after the value")
	}
	return referenceNumbers(v), nil
}

func referenceNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		return Number(t)
	case map[string]any:
		for k, x := range t {
			t[k] = referenceNumbers(x)
		}
	case []any:
		for i, x := range t {
			t[i] = referenceNumbers(x)
		}
	}
	return v
}

// FuzzDecodeJSON: DecodeJSON and encoding/json take and refuse the same documents and read
// the same values from them. Its seeds run with the tests; go test -fuzz FuzzDecodeJSON
// ./record explores further.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{"a": [1, 2.5, -0, 1e400, 12345678901234567890, "x\u00e9\ud83d\ude00", true, null]}`,
		`[]`, `{}`, `"\ud800\u0041"`, `-`, `01`, `1.`, `1e`, `[1,]`, `{"a" 1}`, `nul`, "\"a\xffb\"", `{"a":{"b":[{"c":-9223372036854775808}]}}`,
		`0.000000000000000000000000000001`, `1E-400`, `123456789012345678`, `1234567890123456789`, " \t\n1\r "} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeJSON(data)
		want, werr := decodeReference(data)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: DecodeJSON %v, %v; encoding/json %v, %v", data, got, err, want, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: DecodeJSON %#v; encoding/json %#v", data, got, want)
		}
		var je *JSONError
		if err != nil && (!errors.As(err, &je) || je.Offset < 0 || je.Offset > int64(len(data))) {
			t.Fatalf("%q: %v is not a JSONError with an offset within the document", data, err)
		}
	})
}

// BenchmarkDecodeJSON compares DecodeJSON with encoding/json doing the same (the reference)
// and with the json.Unmarshal it replaced (which rounds integers beyond 2^53), on a body like
// the orders example's.
func BenchmarkDecodeJSON(b *testing.B) {
	body := []byte(`{"order_id":"o-1234","customer_id":"c-42","amount":1234.5,"region":"eu","note":"x","qty":3}`)
	for name, decode := range map[string]func([]byte) (any, error){
		"DecodeJSON": DecodeJSON, "reference": decodeReference,
		"json.Unmarshal": func(data []byte) (any, error) { var v any; err := json.Unmarshal(data, &v); return v, err },
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
