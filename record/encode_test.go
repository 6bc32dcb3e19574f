package record

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"
)

// AppendJSON writes what encoding/json writes, for every kind of value a body holds.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	cases := []struct {
		name string
		v    any
	}{
		{"null", nil},
		{"bools", []any{true, false}},
		{"ints", []any{0, -1, math.MaxInt64, math.MinInt64, int64(42), uint64(math.MaxUint64)}},
		{"floats", []any{0.0, -0.0, 0.1, 1.5e300, 1e21, 1e20, 1e-6, 1e-7, 123456789.125, -2.5e-9}},
		{"numbers", []any{json.Number("12345678901234567890"), json.Number("1e400"), json.Number("")}},
		{"strings", []any{"", "plain", "é ü 中", "<a href='x'>&</a>", "quote \" back \\ slash", "\b\f\n\r\t\x00\x1f\x7f", "bad \xff utf8", "line\u2028para\u2029"}},
		{"bytes", []any{[]byte("raw \x00 bytes"), []byte{}}},
		{"nested", map[string]any{"z": 1, "a": []any{map[string]any{"y": nil, "b": "x"}}, "m": map[string]any{}, "l": []any{}}},
		{"fields sorted by their bytes", map[string]any{"b": 1, "B": 2, "é": 3, "_": 4, "": 5, "a b": 6, "ab": 7}},
		{"more fields than sorted by insertion", manyFields(40)},
		{"time", time.Date(2026, 11, 26, 10, 0, 0, 123, time.UTC)},
		{"other types", map[string]any{"h": map[string]string{"k": "v"}, "s": []string{"a"}, "f32": float32(0.1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, werr := json.Marshal(c.v)
			got, gerr := AppendJSON(nil, c.v)
			if (werr != nil) != (gerr != nil) || string(got) != string(want) {
				t.Fatalf("AppendJSON = %s, %v\n      Marshal = %s, %v", got, gerr, want, werr)
			}
		})
	}
}

// manyFields is an object of n fields whose names do not come in order.
func manyFields(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[strconv.Itoa(i*7919%n)+"k"] = i
	}
	return m
}

func TestAppendJSONRefusesWhatMarshalRefuses(t *testing.T) {
	for _, v := range []any{math.Inf(1), math.NaN(), map[string]any{"x": math.Inf(-1)}, json.Number("12abc")} {
		if _, err := AppendJSON(nil, v); err == nil {
			t.Errorf("AppendJSON(%v) wrote it", v)
		}
	}
}

// Whatever DecodeJSON reads, AppendJSON writes as encoding/json would.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[1.5,"x<y",null,true]}`, `"\u2028\ud800"`, `12345678901234567890`, `1e-7`, `[{"z":{},"a":[]}]`, `"\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeJSON(data)
		if err != nil {
			return
		}
		want, werr := json.Marshal(v)
		got, gerr := AppendJSON(nil, v)
		if (werr != nil) != (gerr != nil) || string(got) != string(want) {
			t.Fatalf("%q: AppendJSON = %s, %v; Marshal = %s, %v", data, got, gerr, want, werr)
		}
	})
}

func BenchmarkEncodeOrder(b *testing.B) {
	v, _ := DecodeJSON([]byte(`{"order_id":"o-1001","customer_id":"c-17","amount":42.5,"region":"EU","total_cents":4250,"items":[{"sku":"a-1","qty":2}]}`))
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = AppendJSON(buf[:0], v)
		}
	})
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(v)
		}
	})
}
