package spec

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

// Value is a parsed field: its typed content, where it was written, and its path.
// Accessors are nil-safe so that optional fields read as zero values.
type Value struct {
	Field *Field
	Node  *yaml.Node // the YAML node; nil when the value is a default or absent
	Pos   diag.Pos   // where the value is (or, when absent, where its parent is)
	Path  string
	Set   bool // written in the file (false for defaults)

	Str      string // String, Enum, Expr (and the text of Duration and Size)
	IntVal   int64  // Int, Size
	FloatVal float64
	BoolVal  bool
	Dur      time.Duration
	Items    []*Value          // List, Strings
	Entries  []Entry           // Map, in file order
	Fields   map[string]*Value // Object

	expr  exprOrigin    // Expr: where the expression text starts
	subst *Substitution // what ${VAR} substitution changed in a scalar; nil when nothing
	// spec is the fields an object was parsed against (nil for other values), so that Get
	// can tell a field left out of the file from a name no spec has.
	spec []Field
}

// Entry is one key of a KindMap value.
type Entry struct {
	Key    string
	KeyPos diag.Pos
	Value  *Value
}

// Get returns the named field of an object; a field of its spec that is absent from the file
// (and has no default) reads as an empty Value placed at the object, so its position still
// points somewhere useful.
//
// A name the object's spec does not have panics. Field names are constants in pythia-pipe's
// code, never taken from the file, so such a name is a programming error (a typo, a field
// renamed in its spec but not where it is read) that would otherwise read as "not set" and
// pass silently; the panic fails the first test that reads it, naming the field. An error
// value would put a check after each of the hundred reads of fields, for a case no file can
// cause. Code that reads a field only some specs have (a stage of any type) asks Lookup.
func (v *Value) Get(name string) *Value {
	f, ok := v.Lookup(name)
	if !ok {
		panic(fmt.Sprintf("spec: %s has no field %q (its fields: %s); a programming error", v.describe(), name, strings.Join(Names(v.spec), ", ")))
	}
	return f
}

// Lookup is Get for a name the object's spec may not have: false then, with an empty Value.
func (v *Value) Lookup(name string) (*Value, bool) {
	if v != nil && v.Fields != nil {
		if f, ok := v.Fields[name]; ok {
			return f, true
		}
	}
	empty := &Value{Path: name}
	if v == nil {
		return empty, true
	}
	empty.Pos, empty.Path = v.Pos, join(v.Path, name)
	if v.spec == nil { // not an object parsed against a spec (a Value a test made): nothing to check
		return empty, true
	}
	f, ok := Lookup(v.spec, name)
	if ok && f.Kind == KindObject {
		empty.spec = objectSpec(f.Fields) // an absent object: its fields are still known
	}
	return empty, ok
}

// objectSpec is fields as the spec of an object Value: never nil, so that an object with no
// fields still refuses every name.
func objectSpec(fields []Field) []Field {
	if fields == nil {
		return []Field{}
	}
	return fields
}

// describe names a value in a panic: its path, or "the top level".
func (v *Value) describe() string {
	if v.Path == "" {
		return "the top level"
	}
	return v.Path
}

// Has reports whether the named field was written in the file.
func (v *Value) Has(name string) bool { return v.Get(name).Set }

// Present reports whether the named field has a value, written or defaulted.
func (v *Value) Present(name string) bool {
	f := v.Get(name)
	return f.Set || f.Field != nil
}

func (v *Value) String(name string) string          { return v.Get(name).Str }
func (v *Value) Int(name string) int64              { return v.Get(name).IntVal }
func (v *Value) Float(name string) float64          { return v.Get(name).FloatVal }
func (v *Value) Bool(name string) bool              { return v.Get(name).BoolVal }
func (v *Value) Duration(name string) time.Duration { return v.Get(name).Dur }

// Strings returns a KindStrings or KindList-of-strings value as a slice.
func (v *Value) Strings(name string) []string {
	items := v.Get(name).Items
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Str
	}
	return out
}

// exprOrigin says how columns inside an expression map to the file.
type exprOrigin struct {
	line, col int // file position of the expression's first character
	block     bool
	indent    int // block scalars: the column (1-based) where content lines start
}

// ExprPos maps a position inside the expression text (line 1-based, column 0-based, as
// expr-lang reports them) to a position in the file.
func (v *Value) ExprPos(line, col int) diag.Pos {
	p := v.Pos
	if v.expr.line == 0 {
		return p
	}
	if v.subst != nil { // the expression compiled is the substituted text: back to the written one
		line, col = lineCol(v.subst.Written, v.subst.toWritten(runeOffset(v.Str, line, col)))
	}
	switch {
	case v.expr.block:
		p.Line = v.expr.line + line - 1
		p.Col = v.expr.indent + col
	case line <= 1:
		p.Line, p.Col = v.expr.line, v.expr.col+col
	default: // a multi-line flow scalar: later lines start at their indentation, unknown here
		p.Line, p.Col = v.expr.line+line-1, col+1
	}
	return p
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
