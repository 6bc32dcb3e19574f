package codec

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func protoJSON(m protoreflect.Message) ([]byte, error) { return protojson.Marshal(m.Interface()) }

func protoMarshal(m protoreflect.Message) ([]byte, error) { return proto.Marshal(m.Interface()) }

func protoUnmarshal(b []byte, m protoreflect.Message) error { return proto.Unmarshal(b, m.Interface()) }

// misfit is a value of the wrong kind for its field.
func misfit(path, want string, x any) error {
	return &DataError{Format: "protobuf", Field: path, Err: fmt.Errorf("expected %s, got %s", want, describe(x))}
}

// wholeIn is x as a whole number within [lo, hi]; a fraction or a number out of range is an
// error, never a rounded or wrapped value.
func wholeIn(x any, path string, lo, hi int64) (int64, error) {
	var i int64
	switch v := x.(type) {
	case int:
		i = int64(v)
	case int64:
		i = v
	case float64:
		if v != math.Trunc(v) || v < float64(lo) || v > float64(hi) {
			return 0, &DataError{Format: "protobuf", Field: path, Err: fmt.Errorf("%v is not a whole number within %d..%d", v, lo, hi)}
		}
		i = int64(v)
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return 0, &DataError{Format: "protobuf", Field: path, Err: fmt.Errorf("%s is not a whole number within %d..%d", v, lo, hi)}
		}
		i = n
	default:
		return 0, misfit(path, "a whole number", x)
	}
	if i < lo || i > hi {
		return 0, &DataError{Format: "protobuf", Field: path, Err: fmt.Errorf("%d is outside %d..%d", i, lo, hi)}
	}
	return i, nil
}

// number is x as a float, when it is a number.
func number(x any) (float64, bool) {
	switch v := x.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}

// describe names the kind of a value in messages.
func describe(x any) string {
	switch v := x.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("a string (%q)", abbreviate(v))
	case bool:
		return fmt.Sprintf("a bool (%v)", v)
	case int, int64, float64, json.Number:
		return fmt.Sprintf("a number (%v)", v)
	case time.Time:
		return "a time"
	case []byte:
		return "bytes"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
