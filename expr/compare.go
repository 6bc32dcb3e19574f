package expr

import (
	"github.com/expr-lang/expr/ast"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// comparison is a condition of the shape `msg.FIELD OP NUMBER` with OP one of < <= > >= (most
// filters and routes: `msg.amount > 0`), decided without the VM when the field holds a float64
// or an int, as the VM would decide it: ints against an int as ints, any other pair as
// float64s. Any other value (absent, null, a string) runs the VM, so that its result and its
// error are the VM's.
type comparison struct {
	field string
	op    string
	i     int // the constant, when isInt
	f     float64
	isInt bool
}

// comparisonOf is n as a comparison, or nil when n is not one.
func comparisonOf(n ast.Node) *comparison {
	b, ok := n.(*ast.BinaryNode)
	if !ok || (b.Operator != "<" && b.Operator != "<=" && b.Operator != ">" && b.Operator != ">=") {
		return nil
	}
	m, ok := b.Left.(*ast.MemberNode)
	if !ok || m.Optional || m.Method {
		return nil
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "msg" {
		return nil
	}
	field, ok := m.Property.(*ast.StringNode)
	if !ok {
		return nil
	}
	c := &comparison{field: field.Value, op: b.Operator}
	switch k := b.Right.(type) {
	case *ast.IntegerNode:
		c.i, c.f, c.isInt = k.Value, float64(k.Value), true
	case *ast.FloatNode:
		c.f = k.Value
	default:
		return nil
	}
	return c
}

// decide is the comparison's result for vars; ok is false when the VM must decide.
func (c *comparison) decide(vars Vars) (result, ok bool) {
	var v any
	switch msg := vars["msg"].(type) {
	case map[string]any:
		v = msg[c.field]
	case *record.Object:
		v, _ = msg.Get(c.field)
	default:
		return false, false
	}
	switch x := v.(type) {
	case int:
		if c.isInt {
			return order(c.op, x, c.i), true
		}
		return order(c.op, float64(x), c.f), true
	case float64:
		return order(c.op, x, c.f), true
	}
	return false, false
}

func order[T int | float64](op string, a, b T) bool {
	switch op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	default:
		return a >= b
	}
}
