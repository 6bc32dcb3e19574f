package codec

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// messageValue is a decoded message as the values expressions work with (messageShape):
// every field without presence, with its zero value when unset; fields with presence only
// when set.
func messageValue(m protoreflect.Message, path string) (any, error) {
	if v, ok, err := wellKnownValue(m, path); ok {
		return v, err
	}
	fields := m.Descriptor().Fields()
	out := make(map[string]any, fields.Len())
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.HasPresence() && !m.Has(fd) {
			continue
		}
		v, err := fieldValue(fd, m.Get(fd), joinPath(path, string(fd.Name())))
		if err != nil {
			return nil, err
		}
		out[string(fd.Name())] = v
	}
	return out, nil
}

func fieldValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) (any, error) {
	switch {
	case fd.IsList():
		l := v.List()
		out := make([]any, l.Len())
		for i := range l.Len() {
			x, err := scalarValue(fd, l.Get(i), fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case fd.IsMap():
		out := map[string]any{}
		var err error
		v.Map().Range(func(k protoreflect.MapKey, x protoreflect.Value) bool {
			key := k.String()
			out[key], err = scalarValue(fd.MapValue(), x, joinPath(path, key))
			return err == nil
		})
		return out, err
	}
	return scalarValue(fd, v, path)
}

func scalarValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) (any, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return v.Bool(), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Int64Kind,
		protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return int(v.Int()), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		u := v.Uint()
		if u > math.MaxInt64 {
			return nil, &DataError{Format: "protobuf", Field: path, Err: fmt.Errorf("%d is beyond an int", u)}
		}
		return int(u), nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float(), nil
	case protoreflect.StringKind:
		return v.String(), nil
	case protoreflect.BytesKind:
		return append([]byte{}, v.Bytes()...), nil
	case protoreflect.EnumKind:
		if e := fd.Enum().Values().ByNumber(v.Enum()); e != nil {
			return string(e.Name()), nil
		}
		return strconv.Itoa(int(v.Enum())), nil // a number this schema does not name: as written
	}
	return messageValue(v.Message(), path)
}

// wellKnownValue is the value of a well-known type that stands for one (wellKnownShape).
func wellKnownValue(m protoreflect.Message, path string) (any, bool, error) {
	md := m.Descriptor()
	get := func(name protoreflect.Name) protoreflect.Value { return m.Get(md.Fields().ByName(name)) }
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return time.Unix(get("seconds").Int(), get("nanos").Int()).UTC(), true, nil
	case "google.protobuf.Duration":
		d := &durationpb.Duration{Seconds: get("seconds").Int(), Nanos: int32(get("nanos").Int())}
		return d.AsDuration().String(), true, nil
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		b, err := protoJSON(m)
		if err != nil {
			return nil, true, &DataError{Format: "protobuf", Field: path, Err: err}
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, true, &DataError{Format: "protobuf", Field: path, Err: err}
		}
		return jsonNumbers(v), true, nil
	}
	if _, ok := wrapperKind(md); ok {
		v, err := scalarValue(md.Fields().ByName("value"), get("value"), path)
		return v, true, err
	}
	return nil, false, nil
}

// jsonNumbers makes the whole numbers of a Struct ints, as a JSON body's are.
func jsonNumbers(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = jsonNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonNumbers(e)
		}
	}
	return v
}

// setMessage fills m from obj, naming the field of the first value that does not fit.
func setMessage(m protoreflect.Message, obj map[string]any, path string) error {
	fields := m.Descriptor().Fields()
	for k, x := range obj {
		fd := fields.ByName(protoreflect.Name(k))
		fpath := joinPath(path, k)
		if fd == nil {
			return &DataError{Format: "protobuf", Field: fpath, Err: fmt.Errorf("not a field of message %s", m.Descriptor().FullName())}
		}
		if x == nil {
			continue // unset
		}
		switch {
		case fd.IsList():
			xs, ok := x.([]any)
			if !ok {
				return misfit(fpath, "a list", x)
			}
			l := m.Mutable(fd).List()
			for i, e := range xs {
				v, err := protoValue(fd, l.NewElement, e, fmt.Sprintf("%s[%d]", fpath, i))
				if err != nil {
					return err
				}
				l.Append(v)
			}
		case fd.IsMap():
			xm, ok := x.(map[string]any)
			if !ok {
				return misfit(fpath, "an object", x)
			}
			mp := m.Mutable(fd).Map()
			for key, e := range xm {
				mk, err := mapKey(fd.MapKey(), key, joinPath(fpath, key))
				if err != nil {
					return err
				}
				v, err := protoValue(fd.MapValue(), mp.NewValue, e, joinPath(fpath, key))
				if err != nil {
					return err
				}
				mp.Set(mk, v)
			}
		default:
			v, err := protoValue(fd, func() protoreflect.Value { return m.NewField(fd) }, x, fpath)
			if err != nil {
				return err
			}
			m.Set(fd, v)
		}
	}
	return nil
}

// protoValue converts x for a field of fd's kind; fresh makes an empty message value.
func protoValue(fd protoreflect.FieldDescriptor, fresh func() protoreflect.Value, x any, path string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if b, ok := x.(bool); ok {
			return protoreflect.ValueOfBool(b), nil
		}
		return protoreflect.Value{}, misfit(path, "a bool", x)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		i, err := wholeIn(x, path, math.MinInt32, math.MaxInt32)
		return protoreflect.ValueOfInt32(int32(i)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		i, err := wholeIn(x, path, math.MinInt64, math.MaxInt64)
		return protoreflect.ValueOfInt64(i), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		i, err := wholeIn(x, path, 0, math.MaxUint32)
		return protoreflect.ValueOfUint32(uint32(i)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		i, err := wholeIn(x, path, 0, math.MaxInt64)
		return protoreflect.ValueOfUint64(uint64(i)), err
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f, ok := number(x)
		if !ok {
			return protoreflect.Value{}, misfit(path, "a number", x)
		}
		if fd.Kind() == protoreflect.FloatKind {
			return protoreflect.ValueOfFloat32(float32(f)), nil
		}
		return protoreflect.ValueOfFloat64(f), nil
	case protoreflect.StringKind:
		if s, ok := x.(string); ok {
			return protoreflect.ValueOfString(s), nil
		}
		return protoreflect.Value{}, misfit(path, "a string", x)
	case protoreflect.BytesKind:
		switch b := x.(type) {
		case []byte:
			return protoreflect.ValueOfBytes(b), nil
		case string:
			if d, err := base64.StdEncoding.DecodeString(b); err == nil {
				return protoreflect.ValueOfBytes(d), nil
			}
		}
		return protoreflect.Value{}, misfit(path, "bytes", x)
	case protoreflect.EnumKind:
		return enumValue(fd, x, path)
	}
	v := fresh()
	if err := setWellKnown(v.Message(), x, path); err != errNotWellKnown {
		return v, err
	}
	obj, ok := x.(map[string]any)
	if !ok {
		return protoreflect.Value{}, misfit(path, "an object", x)
	}
	return v, setMessage(v.Message(), obj, path)
}

func enumValue(fd protoreflect.FieldDescriptor, x any, path string) (protoreflect.Value, error) {
	values := fd.Enum().Values()
	if s, ok := x.(string); ok {
		if e := values.ByName(protoreflect.Name(s)); e != nil {
			return protoreflect.ValueOfEnum(e.Number()), nil
		}
		return protoreflect.Value{}, &DataError{Format: "protobuf", Field: path, Err: fmt.Errorf("%q is not a value of enum %s", s, fd.Enum().FullName())}
	}
	i, err := wholeIn(x, path, math.MinInt32, math.MaxInt32)
	return protoreflect.ValueOfEnum(protoreflect.EnumNumber(i)), err
}

func mapKey(fd protoreflect.FieldDescriptor, key, path string) (protoreflect.MapKey, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(key).MapKey(), nil
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(key)
		if err != nil {
			return protoreflect.MapKey{}, misfit(path, "a key true or false", key)
		}
		return protoreflect.ValueOfBool(b).MapKey(), nil
	}
	n, err := strconv.ParseInt(key, 10, 64)
	if err != nil {
		return protoreflect.MapKey{}, misfit(path, "a whole-number key", key)
	}
	v, err := protoValue(fd, nil, int(n), path)
	return v.MapKey(), err
}

var errNotWellKnown = fmt.Errorf("not a well-known type")

// setWellKnown fills a well-known type's message from the value it stands for.
func setWellKnown(m protoreflect.Message, x any, path string) error {
	md := m.Descriptor()
	set := func(name protoreflect.Name, v protoreflect.Value) { m.Set(md.Fields().ByName(name), v) }
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		t, ok := x.(time.Time)
		if s, isText := x.(string); isText {
			var err error
			t, err = time.Parse(time.RFC3339Nano, s)
			ok = err == nil
		}
		if !ok {
			return misfit(path, "a time", x)
		}
		set("seconds", protoreflect.ValueOfInt64(t.Unix()))
		set("nanos", protoreflect.ValueOfInt32(int32(t.Nanosecond())))
		return nil
	case "google.protobuf.Duration":
		s, ok := x.(string)
		d, err := time.ParseDuration(s)
		if !ok || err != nil {
			return misfit(path, "a duration such as 1.5s", x)
		}
		set("seconds", protoreflect.ValueOfInt64(int64(d/time.Second)))
		set("nanos", protoreflect.ValueOfInt32(int32(d%time.Second)))
		return nil
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		v, err := structpb.NewValue(jsonable(x))
		if err != nil {
			return &DataError{Format: "protobuf", Field: path, Err: err}
		}
		var src protoreflect.Message = v.ProtoReflect()
		switch md.FullName() {
		case "google.protobuf.Struct":
			if v.GetStructValue() == nil {
				return misfit(path, "an object", x)
			}
			src = v.GetStructValue().ProtoReflect()
		case "google.protobuf.ListValue":
			if v.GetListValue() == nil {
				return misfit(path, "a list", x)
			}
			src = v.GetListValue().ProtoReflect()
		}
		return copyInto(m, src, path)
	}
	if _, ok := wrapperKind(md); ok {
		fd := md.Fields().ByName("value")
		v, err := protoValue(fd, nil, x, path)
		if err == nil {
			m.Set(fd, v)
		}
		return err
	}
	return errNotWellKnown
}

// copyInto copies a generated message into the dynamic one of the same type.
func copyInto(dst, src protoreflect.Message, path string) error {
	b, err := protoMarshal(src)
	if err == nil {
		err = protoUnmarshal(b, dst)
	}
	if err != nil {
		return &DataError{Format: "protobuf", Field: path, Err: err}
	}
	return nil
}

// jsonable turns time.Time and []byte into what structpb takes.
func jsonable(x any) any {
	switch v := x.(type) {
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case int:
		return float64(v)
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = jsonable(e)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = jsonable(e)
		}
		return c
	}
	return x
}
