package spec

import (
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
}

// Entry is one key of a KindMap value.
type Entry struct {
	Key    string
	KeyPos diag.Pos
	Value  *Value
}

// Get returns the named field of an object; an absent field reads as an empty Value placed
// at the object, so its position still points somewhere useful.
func (v *Value) Get(name string) *Value {
	if v != nil && v.Fields != nil {
		if f, ok := v.Fields[name]; ok {
			return f
		}
	}
	empty := &Value{Path: name}
	if v != nil {
		empty.Pos = v.Pos
		empty.Path = join(v.Path, name)
	}
	return empty
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
