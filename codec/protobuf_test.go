package codec

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const everyProto = `syntax = "proto3";
package shop.v1;

import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/struct.proto";

enum Status { STATUS_UNSPECIFIED = 0; PAID = 1; SHIPPED = 2; }

message Other { string x = 1; }

message Every {
  int32 i32 = 1;
  int64 i64 = 2;
  uint32 u32 = 3;
  uint64 u64 = 4;
  sint64 s64 = 5;
  fixed64 f64 = 6;
  float f = 7;
  double d = 8;
  bool b = 9;
  string s = 10;
  bytes by = 11;
  Status status = 12;
  repeated int64 list = 13;
  map<string, double> m = 14;
  map<int32, string> byNumber = 15;
  Line line = 16;
  repeated Line lines = 17;
  optional string note = 18;
  google.protobuf.Timestamp at = 19;
  google.protobuf.Duration took = 20;
  google.protobuf.StringValue maybe = 21;
  google.protobuf.Struct extra = 22;
  oneof pay { string card = 23; string iban = 24; }

  message Line { string sku = 1; int32 qty = 2; }
}
`

func compileEvery(t *testing.T) *ProtoFile {
	t.Helper()
	f, err := CompileProto(context.Background(), "every.proto", map[string]string{"every.proto": everyProto})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestProtoShape(t *testing.T) {
	p, err := compileEvery(t).Message("Every")
	if err != nil {
		t.Fatal(err)
	}
	want := "{at: time?, b: bool, by: bytes, byNumber: {*: string}, card: string?, d: float, extra: {*: any}?, f: float, f64: int, i32: int, " +
		"i64: int, iban: string?, line: {qty: int, sku: string}?, lines: [{qty: int, sku: string}], list: [int], m: {*: float}, maybe: string?, " +
		"note: string?, s: string, s64: int, status: string, took: string?, u32: int, u64: int}"
	if got := p.Schema().String(); got != want {
		t.Errorf("shape\n got %s\nwant %s", got, want)
	}
}

func TestProtoRoundTrip(t *testing.T) {
	p, err := compileEvery(t).Message("shop.v1.Every")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{
		"i32": -5, "i64": 9007199254740993, "u32": 7, "u64": 1 << 62, "s64": -3, "f64": 11, "f": 1.5, "d": 0.1, "b": true,
		"s": "café", "by": []byte{0, 255}, "status": "PAID", "list": []any{1, 2}, "m": map[string]any{"x": 2.5},
		"byNumber": map[string]any{"3": "three"}, "line": map[string]any{"sku": "a", "qty": 2},
		"lines": []any{map[string]any{"sku": "b", "qty": 0}}, "note": "", "at": time.Date(2026, 11, 26, 16, 4, 54, 867_000_001, time.UTC),
		"took": "1.5s", "maybe": "m", "extra": map[string]any{"n": 1, "t": "x", "l": []any{true}}, "card": "4111",
	}
	b, err := p.Encode(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Decode(b)
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
		for k := range got {
			if _, ok := in[k]; !ok {
				t.Errorf("%s: not expected, got %#v", k, got[k])
			}
		}
	}
	if err := checkShape(p.Schema(), out); err != nil {
		t.Error(err)
	}
	// Unset fields: those without presence read as their zero value, the others are absent.
	empty, err := p.Decode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkShape(p.Schema(), empty); err != nil {
		t.Error(err)
	}
	if e := empty.(map[string]any); e["i64"] != 0 || e["status"] != "STATUS_UNSPECIFIED" || e["note"] != nil {
		t.Errorf("an empty message reads %v", e)
	}
}

func TestProtoEncodeNamesTheField(t *testing.T) {
	p, err := compileEvery(t).Message("Every")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		value any
		field string
		says  string
	}{
		{"a string where an int is", map[string]any{"i64": "x"}, "i64", "expected a whole number"},
		{"beyond int32", map[string]any{"i32": 1 << 40}, "i32", "outside"},
		{"a fraction", map[string]any{"i64": 1.5}, "i64", "not a whole number"},
		{"an unknown enum name", map[string]any{"status": "LOST"}, "status", "not a value of enum"},
		{"a field the message lacks", map[string]any{"nope": 1}, "nope", "not a field of message shop.v1.Every"},
		{"nested", map[string]any{"lines": []any{map[string]any{"qty": "two"}}}, "lines[0].qty", "expected a whole number"},
		{"not an object", "text", "", "from an object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := p.Encode(nil, c.value)
			var de *DataError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a DataError", err)
			}
			if de.Field != c.field {
				t.Errorf("field %q, want %q (%v)", de.Field, c.field, err)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("%q does not say %q", err, c.says)
			}
		})
	}
}

func TestProtoMessages(t *testing.T) {
	f := compileEvery(t)
	cases := []struct {
		name    string
		message string
		indexes []int
	}{
		{"the first", "", []int{0}},
		{"by name", "Every", []int{1}},
		{"by full name", "shop.v1.Other", []int{0}},
		{"nested (map entries count, as in the descriptor Java reads)", "Every.Line", []int{1, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := f.Message(c.message)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Indexes(), c.indexes) {
				t.Errorf("indexes %v, want %v", p.Indexes(), c.indexes)
			}
			back, err := f.ByIndexes(c.indexes)
			if err != nil || back.Name() != p.Name() {
				t.Errorf("ByIndexes(%v) = %v, %v; want %s", c.indexes, back, err, p.Name())
			}
		})
	}
	if _, err := f.Message("Nope"); err == nil || !strings.Contains(err.Error(), "shop.v1.Every, shop.v1.Every.Line, shop.v1.Other") {
		t.Errorf("an unknown message: %v", err)
	}
	if _, err := f.ByIndexes([]int{9}); err == nil {
		t.Error("indexes naming no message: no error")
	}
	if _, err := CompileProto(context.Background(), "bad.proto", map[string]string{"bad.proto": "syntax = \"proto3\"; message { }"}); err == nil {
		t.Error("a file that does not compile: no error")
	}
}
