package schemareg

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestFraming(t *testing.T) {
	cases := []struct {
		name    string
		id      int
		indexes []int
		want    []byte // the header
	}{
		{"avro", 7, nil, []byte{0, 0, 0, 0, 7}},
		{"a large id", 0x01020304, nil, []byte{0, 1, 2, 3, 4}},
		{"protobuf, the first message: one 0", 1, []int{0}, []byte{0, 0, 0, 0, 1, 0}},
		{"protobuf, a nested message: count and zigzag varints", 1, []int{1, 2}, []byte{0, 0, 0, 0, 1, 4, 2, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := Append(nil, c.id, c.indexes)
			if !bytes.Equal(b, c.want) {
				t.Fatalf("header % x, want % x", b, c.want)
			}
			b = append(b, "body"...)
			id, payload, err := Split(b)
			if err != nil || id != c.id {
				t.Fatalf("Split = %d, %v; want %d", id, err, c.id)
			}
			if c.indexes != nil {
				var idx []int
				if idx, payload, err = SplitIndexes(payload); err != nil || !reflect.DeepEqual(idx, c.indexes) {
					t.Fatalf("SplitIndexes = %v, %v; want %v", idx, err, c.indexes)
				}
			}
			if string(payload) != "body" {
				t.Errorf("payload %q", payload)
			}
		})
	}
}

func TestFramingRefusesWhatIsNotFramed(t *testing.T) {
	cases := []struct {
		name    string
		b       []byte
		indexes bool
		says    string
	}{
		{"empty", nil, false, "empty"},
		{"JSON", []byte(`{"a":1}`), false, "starts with 0x7b"},
		{"too short", []byte{0, 0, 1}, false, "too short"},
		{"indexes cut short", []byte{0, 0, 0, 0, 1, 4, 2}, true, "end inside"},
		{"a negative count", []byte{0, 0, 0, 0, 1, 3}, true, "negative"},
		{"too many indexes", []byte{0, 0, 0, 0, 1, 0xfe, 0x01}, true, "more than 64"},
		{"a negative index", []byte{0, 0, 0, 0, 1, 2, 3}, true, "negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, payload, err := Split(c.b)
			if c.indexes {
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = SplitIndexes(payload)
			}
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FrameError", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(c.says)) {
				t.Errorf("%q does not say %q", err, c.says)
			}
		})
	}
}
