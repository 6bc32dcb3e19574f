package stages

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/pythia-pipe/pythia-pipe/expr"
)

// FieldError is an expression of a stage that failed on a record, or computed what a body
// cannot hold, with what it was computing ("set total", "value", "into risk"): the DLQ says
// which stage failed, and this says where in it.
type FieldError struct {
	Field string
	Err   error // an *expr.RuntimeError or an *UnstorableError
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// UnstorableError is a value an expression computed that a body cannot hold: JSON has no
// NaN or infinities and only string object keys. Caught where the value is stored, rather
// than by the sink that would fail to encode it and take the blame.
type UnstorableError struct {
	Expr  string
	At    string // where inside the value (".a[2]"); "" for the value itself
	Value string // +Inf, NaN, or the type that cannot be encoded
}

func (e *UnstorableError) Error() string {
	at := ""
	if e.At != "" {
		at = " at " + e.At
	}
	return fmt.Sprintf("expression %q computed %s%s (%s)", e.Expr, e.Value, at, e.hint())
}

func (e *UnstorableError) hint() string {
	switch e.Value {
	case "+Inf", "-Inf":
		return "a division by zero?"
	case "NaN":
		return "zero divided by zero, or arithmetic on an infinity?"
	}
	return "a body cannot hold it"
}

// storable runs p and checks that its value can be stored in a body; errors name field.
func storable(field string, p *expr.Program, vars expr.Vars) (any, error) {
	v, err := p.Run(vars)
	if err != nil {
		return nil, &FieldError{Field: field, Err: err}
	}
	if at, what, ok := unstorable(v); ok {
		return nil, &FieldError{Field: field, Err: &UnstorableError{Expr: p.Source(), At: at, Value: what}}
	}
	return v, nil
}

var textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

// unstorable looks for a value inside v that encoding/json refuses, and says where (built
// on the way out, so that nothing is allocated when all is well) and what it is. The types
// expressions and DecodeJSON produce are checked without reflection: this is on the path of
// every field a stage sets.
func unstorable(v any) (where, what string, found bool) {
	switch t := v.(type) {
	case nil, string, bool, int, json.Number, time.Time, []byte:
		return "", "", false
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return "", strconv.FormatFloat(t, 'g', -1, 64), true
		}
		return "", "", false
	case map[string]any:
		for k, x := range t {
			if where, what, found = unstorable(x); found {
				return "." + k + where, what, true
			}
		}
		return "", "", false
	case []any:
		for i, x := range t {
			if where, what, found = unstorable(x); found {
				return "[" + strconv.Itoa(i) + "]" + where, what, true
			}
		}
		return "", "", false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Float32, reflect.Float64:
		return unstorable(rv.Float())
	case reflect.Map:
		switch kt := rv.Type().Key(); {
		case kt.Kind() == reflect.String, kt.Kind() >= reflect.Int && kt.Kind() <= reflect.Uintptr, kt.Implements(textMarshaler):
		default:
			return "", rv.Type().String(), true // groupBy's map[interface {}][]interface {}
		}
		for it := rv.MapRange(); it.Next(); {
			if where, what, found = unstorable(it.Value().Interface()); found {
				return fmt.Sprintf("[%v]", it.Key()) + where, what, true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range rv.Len() {
			if where, what, found = unstorable(rv.Index(i).Interface()); found {
				return "[" + strconv.Itoa(i) + "]" + where, what, true
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !rv.IsNil() {
			return unstorable(rv.Elem().Interface())
		}
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return "", rv.Type().String(), true
	}
	return "", "", false
}
