package expr

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// notANumber is toInt's and toFloat's answer for a value that is no number at all, which
// Coerce reports as a mismatch of kinds.
const notANumber = "not a number"

// maxExactFloat is 2^53: a float64 beyond it may not be the integer that was written, so
// an int field does not take it (9007199254740993.0 reads as ...992).
const maxExactFloat = 1 << 53

// toInt converts a number to int, or says why it cannot ("" when it can).
func toInt(v any) (int, string) {
	switch x := v.(type) {
	case int:
		return x, ""
	case int64:
		if int64(int(x)) == x {
			return int(x), ""
		}
		return 0, outOfRange(x)
	case uint64:
		if x <= math.MaxInt {
			return int(x), ""
		}
		return 0, outOfRange(x)
	case float64:
		switch {
		case x != math.Trunc(x):
			return 0, fmt.Sprintf("a number with a fraction (%v)", x)
		case math.Abs(x) > maxExactFloat:
			return 0, fmt.Sprintf("%v, a float beyond 2^53 that may not be the integer written (write it without a fraction or exponent)", x)
		}
		return int(x), ""
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, strconv.IntSize); err == nil {
			return int(i), ""
		}
		return 0, outOfRange(x)
	}
	return 0, notANumber
}

func outOfRange(x any) string {
	return fmt.Sprintf("%v, out of range (%d to %d)", x, math.MinInt, math.MaxInt)
}

// toFloat converts a number to float64, or says why it cannot ("" when it can). Integers
// beyond 2^53 round, as they do for any float.
func toFloat(v any) (float64, string) {
	switch x := v.(type) {
	case float64:
		return x, ""
	case int:
		return float64(x), ""
	case int64:
		return float64(x), ""
	case uint64:
		return float64(x), ""
	case json.Number:
		// DecodeJSON keeps a number as written when it is an integer beyond int64 (which a
		// float holds, rounded) or outside float64's range altogether (which it does not).
		switch n := record.Number(x).(type) {
		case float64:
			return n, ""
		case int:
			return float64(n), ""
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil && !strings.ContainsAny(string(x), ".eE") {
			return f, ""
		}
		return 0, fmt.Sprintf("%s, outside the range of a float", x)
	}
	return 0, notANumber
}

// ConvertError is an int() or float() that cannot give the number it was asked for. The
// builtins it replaces would give a wrong one: int(1.5e300) is -9223372036854775808.
type ConvertError struct {
	Func string // int or float
	Arg  any
	Why  string
}

func (e *ConvertError) Error() string {
	arg := fmt.Sprint(e.Arg)
	if s, ok := e.Arg.(string); ok {
		arg = strconv.Quote(s)
	}
	return fmt.Sprintf("%s(%s): %s", e.Func, arg, e.Why)
}

// checkedInt is expr-lang's int() (truncating floats toward zero, parsing strings), but an
// error where that has no right answer.
func checkedInt(args ...any) (any, error) {
	x := args[0]
	fail := func(why string) (any, error) { return nil, &ConvertError{Func: "int", Arg: x, Why: why} }
	switch t := x.(type) {
	case int:
		return t, nil
	case float64:
		return floatToInt(t, fail)
	case string:
		return parseInt(t, fail)
	case json.Number:
		return parseInt(string(t), fail)
	case nil:
		return fail("not a number")
	}
	v := reflect.ValueOf(x)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if i := v.Int(); int64(int(i)) == i {
			return int(i), nil
		}
		return fail("out of int's range")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := v.Uint(); u <= math.MaxInt {
			return int(u), nil
		}
		return fail("out of int's range")
	case reflect.Float32, reflect.Float64:
		return floatToInt(v.Float(), fail)
	case reflect.String:
		return parseInt(v.String(), fail)
	}
	return fail("not a number")
}

func floatToInt(f float64, fail func(string) (any, error)) (any, error) {
	switch {
	case math.IsNaN(f):
		return fail("not a number")
	// -2^63 is an int and 2^63 is not; both are exact floats.
	case f < math.MinInt || f >= -math.MinInt:
		return fail("out of int's range")
	}
	return int(f), nil
}

func parseInt(s string, fail func(string) (any, error)) (any, error) {
	i, err := strconv.Atoi(s)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return fail("out of int's range")
	case err != nil:
		return fail("not an integer")
	}
	return i, nil
}

// checkedFloat is expr-lang's float(), which also takes the numbers DecodeJSON keeps as
// written (an integer beyond int64 rounds; one beyond float64 is an error, not ±Inf).
func checkedFloat(args ...any) (any, error) {
	x := args[0]
	fail := func(why string) (any, error) { return nil, &ConvertError{Func: "float", Arg: x, Why: why} }
	switch t := x.(type) {
	case float64:
		return t, nil
	case int:
		return float64(t), nil
	case string:
		return parseFloat(t, fail)
	case json.Number:
		return parseFloat(string(t), fail)
	case nil:
		return fail("not a number")
	}
	v := reflect.ValueOf(x)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.String:
		return parseFloat(v.String(), fail)
	}
	return fail("not a number")
}

func parseFloat(s string, fail func(string) (any, error)) (any, error) {
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange): // beyond float64: ParseFloat gives ±Inf
		return fail("out of float's range")
	case err != nil:
		return fail("not a number")
	}
	return f, nil
}

// numberFuncs replaces the int and float builtins by the checked ones, keeping the
// builtins' argument checks and static result types (so int(msg.x) is still known as int).
func numberFuncs() []exprlang.Option {
	var opts []exprlang.Option
	for name, fn := range map[string]func(...any) (any, error){"int": checkedInt, "float": checkedFloat} {
		validate := builtin.Builtins[builtin.Index[name]].Validate
		opts = append(opts, exprlang.DisableBuiltin(name), func(c *conf.Config) {
			c.Functions[name] = &builtin.Function{Name: name, Func: fn, Validate: validate}
		})
	}
	return opts
}
