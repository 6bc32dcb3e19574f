// Package expr is the expression layer over expr-lang/expr: record schemas as expression
// types, typed environments, compile-once programs with positioned diagnostics.
package expr

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr/types"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// Kind is the kind of a schema node.
type Kind int

const (
	Any Kind = iota
	String
	Int
	Float
	Bool
	Time
	Bytes
	List
	Object
)

var kindNames = map[string]Kind{"any": Any, "string": String, "int": Int, "float": Float, "bool": Bool, "time": Time, "bytes": Bytes}

func (k Kind) String() string {
	for name, v := range kindNames {
		if v == k {
			return name
		}
	}
	return map[Kind]string{List: "list", Object: "object"}[k]
}

// Schema is the shape of a decoded record body (or of a value inside it). It is what
// expressions are type-checked against and what decode checks records against.
type Schema struct {
	Kind     Kind
	Optional bool               // may be absent or null
	Elem     *Schema            // List
	Fields   map[string]*Schema // Object
	Open     *Schema            // Object: the type of fields not listed ("*"); nil = closed
	// Dropped names the fields a map stage dropped, with where ("stage tidy (line 37)"):
	// reading one is an error even where Open admits other fields.
	Dropped map[string]string
	// Unchecked: no schema declares the fields not listed (a decode without a schema, an HTTP
	// answer merged in), so reading one is not reported as undeclared.
	Unchecked bool
}

// AnyMap is an object about which nothing is known: every field is allowed.
func AnyMap() *Schema {
	return &Schema{Kind: Object, Fields: map[string]*Schema{}, Open: &Schema{Kind: Any}, Unchecked: true}
}

// Type is the schema as an expr-lang type: closed objects reject unknown fields.
func (s *Schema) Type() types.Type {
	if s == nil {
		return types.Any
	}
	switch s.Kind {
	case String:
		return types.String
	case Int:
		return types.Int
	case Float:
		return types.Float64
	case Bool:
		return types.Bool
	case Time:
		return types.TypeOf(time.Time{})
	case Bytes:
		return types.TypeOf([]byte(nil))
	case List:
		return types.Array(s.Elem.Type())
	case Object:
		m := types.Map{}
		for k, f := range s.Fields {
			m[k] = f.Type()
		}
		if s.Open != nil {
			m[types.Extra] = s.Open.Type()
		}
		return m
	}
	return types.Any
}

func (s *Schema) String() string {
	if s == nil {
		return "any"
	}
	opt := ""
	if s.Optional {
		opt = "?"
	}
	switch s.Kind {
	case List:
		return "[" + s.Elem.String() + "]" + opt
	case Object:
		keys := s.FieldNames()
		parts := make([]string, 0, len(keys)+1)
		for _, k := range keys {
			parts = append(parts, k+": "+s.Fields[k].String())
		}
		if s.Open != nil {
			parts = append(parts, "*: "+s.Open.String())
		}
		return "{" + strings.Join(parts, ", ") + "}" + opt
	}
	return s.Kind.String() + opt
}

// FieldNames lists an object's fields in sorted order.
func (s *Schema) FieldNames() []string {
	keys := make([]string, 0, len(s.Fields))
	for k := range s.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// With returns a copy of an object schema with field name set to f (a map's `set`).
// A schema that is not an object becomes an open object.
func (s *Schema) With(name string, f *Schema) *Schema {
	c := s.copyObject()
	c.Fields[name] = f
	delete(c.Dropped, name)
	return c
}

// Without returns a copy of an object schema without field name (a map's `drop`), which
// remembers that it was dropped by, e.g., "stage tidy (line 37)".
func (s *Schema) Without(name, by string) *Schema {
	c := s.copyObject()
	delete(c.Fields, name)
	c.Dropped[name] = by
	return c
}

// Opened returns a copy of an object schema that admits fields it does not list, after a
// merge of data no schema describes (an HTTP answer): any field may be there now.
func (s *Schema) Opened() *Schema {
	c := s.copyObject()
	c.Open = &Schema{Kind: Any}
	c.Unchecked = true
	clear(c.Dropped)
	return c
}

func (s *Schema) copyObject() *Schema {
	if s == nil || s.Kind != Object {
		s = AnyMap()
	}
	c := &Schema{Kind: Object, Fields: make(map[string]*Schema, len(s.Fields)+1), Open: s.Open, Unchecked: s.Unchecked,
		Dropped: make(map[string]string, len(s.Dropped))}
	for k, v := range s.Fields {
		c.Fields[k] = v
	}
	for k, v := range s.Dropped {
		c.Dropped[k] = v
	}
	return c
}

// droppedBy is where a field name was dropped, in this object or one inside it; "" when
// it was not.
func (s *Schema) droppedBy(name string) string {
	if s == nil {
		return ""
	}
	if by, ok := s.Dropped[name]; ok {
		return by
	}
	for _, f := range s.Fields {
		if f.Kind == List {
			f = f.Elem
		}
		if by := f.droppedBy(name); by != "" {
			return by
		}
	}
	return ""
}

// Field is the schema of the field name of an object: found when the object lists it.
func (s *Schema) Field(name string) (*Schema, bool) {
	if s == nil || s.Kind != Object {
		return nil, false
	}
	f, ok := s.Fields[name]
	return f, ok
}

// Equal reports whether two schemas describe the same shape.
func (s *Schema) Equal(o *Schema) bool { return s.String() == o.String() }

// NamedSchema is the schema a type name stands for (string, int, float, bool, time, bytes,
// any, with a trailing ? for optional); false when the name is none of these. Reading the
// rest of a schema (lists, mappings, positions) is the decode stage's, which knows YAML.
func NamedSchema(text string) (*Schema, bool) {
	name, opt := strings.CutSuffix(strings.TrimSpace(text), "?")
	k, ok := kindNames[name]
	if !ok {
		return nil, false
	}
	return &Schema{Kind: k, Optional: opt}, true
}

// KindNames lists the type names NamedSchema knows, sorted.
func KindNames() []string {
	names := make([]string, 0, len(kindNames))
	for k := range kindNames {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Coerce checks a decoded JSON value (record.DecodeJSON's) against the schema and converts it
// where JSON is looser than the schema: whole numbers to int, numbers to float, RFC 3339
// strings to time. It returns the value to keep. A number an int field cannot hold exactly
// is an error, never a rounded or wrapped value.
func (s *Schema) Coerce(v any, path string) (any, error) {
	if s == nil || s.Kind == Any {
		return v, nil
	}
	if v == nil {
		if s.Optional {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: missing %s", pathOr(path), s.Kind)
	}
	switch s.Kind {
	case String:
		if _, ok := v.(string); ok {
			return v, nil
		}
	case Int:
		if _, ok := v.(int); ok {
			return v, nil // as it is: making it anew would be an allocation per record
		}
		i, why := toInt(v)
		if why == "" {
			return i, nil
		}
		if why != notANumber {
			return nil, fmt.Errorf("%s: expected int, got %s", pathOr(path), why)
		}
	case Float:
		if _, ok := v.(float64); ok {
			return v, nil
		}
		f, why := toFloat(v)
		if why == "" {
			return f, nil
		}
		if why != notANumber {
			return nil, fmt.Errorf("%s: expected float, got %s", pathOr(path), why)
		}
	case Bool:
		if _, ok := v.(bool); ok {
			return v, nil
		}
	case Time:
		switch x := v.(type) {
		case time.Time:
			return x, nil
		case string:
			t, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not an RFC 3339 time", pathOr(path), x)
			}
			return t, nil
		}
	case Bytes:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	case List:
		if xs, ok := v.([]any); ok {
			for i, x := range xs {
				c, err := s.Elem.Coerce(x, fmt.Sprintf("%s[%d]", path, i))
				if err != nil {
					return nil, err
				}
				xs[i] = c
			}
			return xs, nil
		}
	case Object:
		switch m := v.(type) {
		case map[string]any:
			return s.coerceObject(m, path)
		case *record.Object:
			return s.LazyCheck().coerce(m, path)
		}
	}
	return nil, fmt.Errorf("%s: expected %s, got %s", pathOr(path), s.Kind, jsonKind(v))
}

func (s *Schema) coerceObject(m map[string]any, path string) (map[string]any, error) {
	for name, f := range s.Fields {
		x, ok := m[name]
		if !ok && f.Optional {
			continue
		}
		c, err := f.Coerce(x, joinPath(path, name))
		if err != nil {
			return nil, err
		}
		if (ok && f.keepsValue(x)) || (!ok && c == nil) {
			continue // nothing to change
		}
		m[name] = c
	}
	if s.Open != nil && s.Open.Kind == Any {
		return m, nil // "*": any takes every other field as it is
	}
	for name, x := range m {
		if _, known := s.Fields[name]; known {
			continue
		}
		if s.Open == nil {
			return nil, fmt.Errorf("%s: field not in the schema (add it, or \"*\": any to allow others)", joinPath(path, name))
		}
		c, err := s.Open.Coerce(x, joinPath(path, name))
		if err != nil {
			return nil, err
		}
		m[name] = c
	}
	return m, nil
}

// keepsValue reports that Coerce returns the present value x as it is, when it returns no
// error: a field holding it needs no writing back.
func (s *Schema) keepsValue(x any) bool {
	switch s.Kind {
	case Any, String, Bool:
		return true
	case Int:
		_, ok := x.(int)
		return ok
	case Float:
		_, ok := x.(float64)
		return ok
	}
	return false
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func pathOr(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case float64, float32, int, int64, uint64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any, *record.Object:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
