package codec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// every is an Avro record with every type the schema model maps.
const every = `{"type":"record","name":"Every","namespace":"t","fields":[
 {"name":"i","type":"int"},
 {"name":"l","type":"long"},
 {"name":"f","type":"float"},
 {"name":"d","type":"double"},
 {"name":"b","type":"boolean"},
 {"name":"s","type":"string"},
 {"name":"by","type":"bytes"},
 {"name":"fx","type":{"type":"fixed","name":"F4","size":4}},
 {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
 {"name":"a","type":{"type":"array","items":"long"}},
 {"name":"m","type":{"type":"map","values":"double"}},
 {"name":"r","type":{"type":"record","name":"Inner","fields":[{"name":"x","type":"string"}]}},
 {"name":"opt","type":["null","string"],"default":null},
 {"name":"multi","type":["null","int","string"],"default":null},
 {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"tus","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"date","type":{"type":"int","logicalType":"date"}},
 {"name":"tod","type":{"type":"int","logicalType":"time-millis"}},
 {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
 {"name":"decfx","type":{"type":"fixed","name":"D8","size":8,"logicalType":"decimal","precision":12,"scale":3}},
 {"name":"uuid","type":{"type":"string","logicalType":"uuid"}},
 {"name":"uuidfx","type":{"type":"fixed","name":"U16","size":16,"logicalType":"uuid"}},
 {"name":"rs","type":{"type":"array","items":"Inner"}}
]}`

func TestAvroShape(t *testing.T) {
	a, err := ParseAvro(every)
	if err != nil {
		t.Fatal(err)
	}
	want := "{a: [int], b: bool, by: bytes, d: float, date: time, dec: string, decfx: string, e: string, f: float, fx: bytes, i: int, " +
		"l: int, m: {*: float}, multi: any?, opt: string?, r: {x: string}, rs: [{x: string}], s: string, tod: int, ts: time, tus: time, uuid: string, uuidfx: string}"
	if got := a.Schema().String(); got != want {
		t.Errorf("shape\n got %s\nwant %s", got, want)
	}
}

func TestAvroRoundTrip(t *testing.T) {
	a, err := ParseAvro(every)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 26, 16, 4, 54, 867_000_000, time.UTC)
	in := map[string]any{
		"i": 5, "l": 9007199254740993, "f": 1.5, "d": 0.1, "b": true, "s": "café", "by": []byte{0, 1, 255},
		"fx": []byte("abcd"), "e": "GREEN", "a": []any{1, -2}, "m": map[string]any{"x": 2.5},
		"r": map[string]any{"x": "in"}, "opt": nil, "multi": "two", "ts": ts, "tus": ts.Add(123 * time.Microsecond),
		"date": time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), "tod": 3_600_000, "dec": "-12.30", "decfx": "1234.567",
		"uuid": "123e4567-e89b-12d3-a456-426614174000", "uuidfx": "123e4567-e89b-12d3-a456-426614174000",
		"rs": []any{map[string]any{"x": "a"}},
	}
	b, err := a.Encode(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		got := out.(map[string]any)
		for k, v := range in {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("%s: got %#v (%T), want %#v (%T)", k, got[k], got[k], v, v)
			}
		}
	}
	// The decoded values are what the shape says, so expressions see the types they were
	// checked against.
	if err := checkShape(a.Schema(), out); err != nil {
		t.Error(err)
	}
}

func TestAvroEncodeNamesTheField(t *testing.T) {
	a, err := ParseAvro(`{"type":"record","name":"O","fields":[{"name":"id","type":"string"},
		{"name":"n","type":"long"},{"name":"in","type":{"type":"record","name":"I","fields":[{"name":"q","type":"int"}]}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		value map[string]any
		field string
		says  string
	}{
		{"a string where a long is", map[string]any{"id": "o1", "n": "x", "in": map[string]any{"q": 1}}, "n", "cannot use string"},
		{"a field missing", map[string]any{"id": "o1", "in": map[string]any{"q": 1}}, "", "missing"},
		{"a field the record lacks", map[string]any{"id": "o1", "n": 1, "in": map[string]any{"q": 1}, "extra": 1}, "extra", "not a field of record O"},
		{"nested", map[string]any{"id": "o1", "n": 1, "in": map[string]any{"q": "no"}}, "in.q", "cannot use string"},
		{"an int too large for int", map[string]any{"id": "o1", "n": 1, "in": map[string]any{"q": 1 << 40}}, "in.q", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.Encode(nil, c.value)
			var de *DataError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a DataError", err)
			}
			if c.field != "" && de.Field != c.field {
				t.Errorf("field %q, want %q (%v)", de.Field, c.field, err)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("%q does not say %q", err, c.says)
			}
		})
	}
}

func TestAvroDecodeRefusesBadBytes(t *testing.T) {
	a, err := ParseAvro(`{"type":"record","name":"O","fields":[{"name":"id","type":"string"},{"name":"n","type":"long"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	good, err := a.Encode(nil, map[string]any{"id": "o1", "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		b    []byte
	}{
		{"cut short", good[:2]},
		{"bytes left over", append(append([]byte(nil), good...), 7)},
		{"a string longer than the body", []byte{0x7e, 'a'}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.Decode(c.b)
			var de *DataError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a DataError", err)
			}
		})
	}
}

func TestAvroResolve(t *testing.T) {
	reader, err := ParseAvro(`{"type":"record","name":"O","fields":[{"name":"id","type":"string"},{"name":"n","type":"long"},
		{"name":"note","type":"string","default":"none"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := ParseAvro(`{"type":"record","name":"O","fields":[{"name":"id","type":"string"},{"name":"n","type":"int"},{"name":"gone","type":"boolean"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := writer.Encode(nil, map[string]any{"id": "o1", "n": 7, "gone": true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reader.Resolve(writer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "o1", "n": 7, "note": "none"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	incompatible, err := ParseAvro(`{"type":"record","name":"O","fields":[{"name":"id","type":"long"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	var se *SchemaError
	if _, err := incompatible.Resolve(writer); !errors.As(err, &se) {
		t.Errorf("an incompatible writer: err = %v, want a SchemaError", err)
	}
}
