package expr

import (
	"fmt"

	"github.com/expr-lang/expr/ast"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// LazyCheck is Coerce of an object schema for lazy bodies (record.Object), its fields listed
// once rather than walked in their map for every record.
type LazyCheck struct {
	s      *Schema
	fields []namedSchema
}

type namedSchema struct {
	name string
	s    *Schema
}

// LazyCheck is s's LazyCheck; nil for a schema that is not an object's.
func (s *Schema) LazyCheck() *LazyCheck {
	if s == nil || s.Kind != Object {
		return nil
	}
	c := &LazyCheck{s: s}
	for _, name := range s.FieldNames() {
		c.fields = append(c.fields, namedSchema{name, s.Fields[name]})
	}
	return c
}

// Coerce is Schema.Coerce(v, ""): a lazy body is checked as the map it stands for would be,
// with the same errors, and changed in place.
func (c *LazyCheck) Coerce(v any) (any, error) {
	if o, ok := v.(*record.Object); ok {
		return c.coerce(o, "")
	}
	return c.s.Coerce(v, "")
}

// coerce is coerceObject for a lazy body: the same checks, conversions and errors, with a
// field decoded only when its check needs its value. A string for a string field, a boolean
// for a bool field and anything for an any field are taken as they are written.
func (c *LazyCheck) coerce(o *record.Object, path string) (*record.Object, error) {
	s := c.s
	for _, nf := range c.fields {
		f := nf.s
		i := o.Index(nf.name)
		if i < 0 {
			if f.Optional {
				continue
			}
			if _, err := f.Coerce(nil, joinPath(path, nf.name)); err != nil {
				return nil, err
			}
			continue
		}
		if f.takes(o.Token(i)) {
			continue
		}
		x, err := f.Coerce(o.At(i), joinPath(path, nf.name))
		if err != nil {
			return nil, err
		}
		o.SetAt(i, x) // decoded once here, rather than by every expression reading it
	}
	if s.Open != nil && s.Open.Kind == Any {
		return o, nil
	}
	for i := range o.Len() {
		name := o.Name(i)
		if _, known := s.Fields[name]; known {
			continue
		}
		if s.Open == nil {
			return nil, fmt.Errorf("%s: field not in the schema (add it, or \"*\": any to allow others)", joinPath(path, name))
		}
		x, err := s.Open.Coerce(o.At(i), joinPath(path, name))
		if err != nil {
			return nil, err
		}
		o.SetAt(i, x)
	}
	return o, nil
}

// takes reports a value written as tok ('"', 't', 'f', ...: record.Object.Token) that Coerce
// would keep as it is.
func (s *Schema) takes(tok byte) bool {
	switch s.Kind {
	case Any:
		return true
	case String:
		return tok == '"'
	case Bool:
		return tok == 't' || tok == 'f'
	}
	return false
}

// fetchesOnly reports an expression that reads msg only by the names of its fields
// (msg.amount, msg["amount"], msg?.amount) or compares it with nil: fastFetch makes each of
// those reads a call that takes a lazy body (record.Object) as the map it stands for. Any
// other use of msg — whole (keys(msg), msg in a list, a function of msg, $env), or by a
// computed name — would hand the Object itself to expr-lang, which does not know it.
func fetchesOnly(n ast.Node) bool {
	if !fetchKindOK {
		return false
	}
	var v msgUses
	ast.Walk(&n, &v)
	return !v.other && v.fetched == v.seen
}

// msgUses counts the identifiers msg of an expression and those read by a field's name.
type msgUses struct {
	seen, fetched int
	other         bool // $env, or a variable named msg
}

func (v *msgUses) Visit(n *ast.Node) {
	switch t := (*n).(type) {
	case *ast.IdentifierNode:
		if t.Value == "msg" {
			v.seen++
		}
		v.other = v.other || t.Value == "$env"
	case *ast.MemberNode:
		if _, named := t.Property.(*ast.StringNode); named && isMsg(t.Node) {
			v.fetched++
		}
	case *ast.BinaryNode:
		if (t.Operator == "==" || t.Operator == "!=") && (isMsg(t.Left) && isNil(t.Right) || isNil(t.Left) && isMsg(t.Right)) {
			v.fetched++
		}
	case *ast.VariableDeclaratorNode:
		v.other = v.other || t.Name == "msg"
	}
}

func isMsg(n ast.Node) bool {
	id, ok := n.(*ast.IdentifierNode)
	return ok && id.Value == "msg"
}

func isNil(n ast.Node) bool {
	_, ok := n.(*ast.NilNode)
	return ok
}
