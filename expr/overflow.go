package expr

import (
	"fmt"
	"math"
	"reflect"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"
)

// OverflowError is integer arithmetic whose result does not fit int64. expr-lang would wrap
// around (9223372036854775807 + 1 is -9223372036854775808) and a record would carry it on.
type OverflowError struct {
	Op   string
	A, B int
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("integer overflow: %d %s %d is beyond int64 (compute in floats, as with 2.0, to go beyond)", e.A, e.Op, e.B)
}

// checkedOps are the operators that can overflow int64, and the functions that replace them.
var checkedOps = map[string]struct {
	fn    string
	ints  func(a, b int) (int, bool) // the result, and whether it is right
	other func(a, b any) any         // what the operator does with other operands
}{
	"+": {"__add", addInt, runtime.Add},
	"-": {"__sub", subInt, runtime.Subtract},
	"*": {"__mul", mulInt, runtime.Multiply},
}

func addInt(a, b int) (int, bool) {
	c := a + b
	return c, (c > a) == (b > 0)
}

func subInt(a, b int) (int, bool) {
	c := a - b
	return c, (c < a) == (b > 0)
}

func mulInt(a, b int) (int, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	c := a * b
	return c, c/b == a && !(a == -1 && b == math.MinInt) && !(b == -1 && a == math.MinInt)
}

var (
	intType = reflect.TypeFor[int]()
	anyType = reflect.TypeFor[any]()
)

// overflowChecks replaces + - * between operands that are, or may be, ints by functions that
// fail on overflow. Operands of other known types (floats, strings, times) keep the plain
// operators: they cannot overflow int64, and their errors at compile time stay as they are.
// The cost, where ints may meet, is a function call instead of an opcode: tens of
// nanoseconds and a small allocation per operation (BenchmarkArithmetic).
type overflowChecks struct{}

func (overflowChecks) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok {
		return
	}
	op, ok := checkedOps[b.Operator]
	if !ok || !intOrUnknown(b.Left.Type()) || !intOrUnknown(b.Right.Type()) {
		return
	}
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: op.fn}, Arguments: []ast.Node{b.Left, b.Right}}
	ast.Patch(node, call)
}

// intOrUnknown: an operand expr-lang knows to be int, or does not know (msg fields without
// a schema; nil when an inner node was just patched).
func intOrUnknown(t reflect.Type) bool {
	return t == nil || t == intType || t.Kind() == reflect.Interface
}

// overflowFuncs registers the checked operators and the patch that puts them in place.
func overflowFuncs() []exprlang.Option {
	opts := []exprlang.Option{exprlang.Patch(overflowChecks{})}
	for sym, op := range checkedOps {
		fn := func(args ...any) (any, error) {
			if a, ok := args[0].(int); ok {
				if b, ok := args[1].(int); ok {
					if c, ok := op.ints(a, b); ok {
						return c, nil
					}
					return nil, &OverflowError{Op: sym, A: a, B: b}
				}
			}
			return op.other(args[0], args[1]), nil // panics on what it cannot do, as the operator did
		}
		validate := func(args []reflect.Type) (reflect.Type, error) {
			if args[0] == intType && args[1] == intType {
				return intType, nil // int + int stays int for type checks downstream
			}
			return anyType, nil
		}
		opts = append(opts, func(c *conf.Config) {
			c.Functions[op.fn] = &builtin.Function{Name: op.fn, Func: fn, Validate: validate}
		})
	}
	return opts
}
