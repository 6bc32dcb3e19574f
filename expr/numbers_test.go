package expr

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// runOn compiles src against env and runs it on a decoded body.
func runOn(t *testing.T, env Env, src string, msg any) (any, *Program, error) {
	t.Helper()
	var diags diag.List
	p := Compile(exprValue(src), env, WantAny, &diags)
	if p == nil {
		t.Fatal(diags.Err())
	}
	b := NewBinder(p)
	vars := b.Bind(&record.Record{Msg: msg, Decoded: true})
	defer b.Release(vars)
	out, err := p.Run(vars)
	return out, p, err
}

func decoded(t *testing.T, body string) any {
	t.Helper()
	v, err := record.DecodeJSON([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Arithmetic and comparisons on the numbers decode gives, and the checked int() and float().
func TestNumberExpressions(t *testing.T) {
	body := `{"i": 3, "f": 2.5, "exact": 9007199254740993, "max": 9223372036854775807, "min": -9223372036854775808,
		"big": 12345678901234567890, "huge": 1e400, "half": 1.5e300, "s": "12", "t": "x", "neg": -2.7}`
	cases := []struct {
		name, src string
		want      any
		err       string
	}{
		{"int compares with int", "msg.i == 3", true, ""},
		{"int compares with float", "msg.i > 2.5", true, ""},
		{"float compares with int", "msg.f > 2", true, ""},
		{"int times int", "msg.i * 2", 6, ""},
		{"int times float", "msg.i * msg.f", 7.5, ""},
		{"exact int arithmetic", "msg.exact + 1", 9007199254740994, ""},
		{"exact int comparison", "msg.exact > 9007199254740992", true, ""},
		{"overflow on +", "msg.max + 1", nil, "integer overflow: 9223372036854775807 + 1 is beyond int64"},
		{"overflow on -", "msg.min - 1", nil, "integer overflow: -9223372036854775808 - 1 is beyond int64"},
		{"overflow on *", "msg.max * 2", nil, "integer overflow: 9223372036854775807 * 2 is beyond int64"},
		{"min times -1", "msg.min * -1", nil, "integer overflow: -9223372036854775808 * -1"},
		{"floats go beyond", "msg.max * 2.0", 1.8446744073709552e19, ""},
		{"strings still concatenate", "msg.t + msg.s", "x12", ""},
		{"inside a closure", "map([1, 2], # * msg.i)", []any{3, 6}, ""},
		{"overflow inside a closure", "map([1, 2], # * msg.max)", nil, "integer overflow: 2 * 9223372036854775807"},
		{"time minus time", `date("2026-01-02") - date("2026-01-01")`, 24 * time.Hour, ""},
		{"beyond int64: arithmetic is an error", "msg.big * 2", nil, "invalid operation: json.Number * int"},
		{"beyond int64: comparison is an error", "msg.big > 0", nil, "invalid operation: json.Number > int"},
		{"beyond int64: equality is false", "msg.big == 3", false, ""},
		{"beyond int64: as text", "string(msg.big)", "12345678901234567890", ""},
		{"beyond int64: float() rounds", "float(msg.big)", 1.2345678901234567e19, ""},
		{"beyond int64: int() is an error", "int(msg.big)", nil, "int(12345678901234567890): out of int's range"},
		{"beyond float64: float() is an error", "float(msg.huge)", nil, "float(1e400): out of float's range"},
		{"int() truncates", "int(msg.neg)", -2, ""},
		{"int() parses", "int(msg.s)", 12, ""},
		{"int() of a word", "int(msg.t)", nil, `int("x"): not an integer`},
		{"int() of a string beyond int64", `int("12345678901234567890")`, nil, "out of int's range"},
		{"int() of a float beyond int64", "int(msg.half * 100)", nil, "out of int's range"},
		{"int() of 2^63", "int(9223372036854775808.0)", nil, "out of int's range"},
		{"int() of -2^63", "int(-9223372036854775808.0)", math.MinInt, ""},
		{"int() of +Inf", "int(msg.f / 0)", nil, "int(+Inf): out of int's range"},
		{"int() of NaN", "int(msg.huge2 ?? (0.0 / 0))", nil, "int(NaN): not a number"},
		{"int() of nil", "int(msg.nothing)", nil, "int(<nil>): not a number"},
		{"float() of a word", "float(msg.t)", nil, `float("x"): not a number`},
		{"float() of a string", "float(msg.s)", 12.0, ""},
		{"float() of a string beyond float64", `float("1e400")`, nil, "out of float's range"},
	}
	msg := decoded(t, body)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := runOn(t, Env{}, c.src, record.DeepCopy(msg))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("want an error with %q, got %v, %v", c.err, out, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(out, c.want) {
				t.Fatalf("got %#v, %v; want %#v", out, err, c.want)
			}
		})
	}
}

// The errors are typed, for whoever needs to tell them apart.
func TestNumberErrorsAreTyped(t *testing.T) {
	_, _, err := runOn(t, Env{}, "msg.a * msg.a", map[string]any{"a": math.MaxInt})
	var oe *OverflowError
	if !errors.As(err, &oe) || oe.Op != "*" {
		t.Errorf("want an OverflowError, got %v", err)
	}
	_, _, err = runOn(t, Env{}, "int(msg.a)", map[string]any{"a": json.Number("1e400")})
	var ce *ConvertError
	if !errors.As(err, &ce) || ce.Func != "int" {
		t.Errorf("want a ConvertError, got %v", err)
	}
}

// The checks keep what types expressions had: int(x) is an int, ints stay ints under a
// schema, and mistakes still fail at validate time.
func TestNumberExpressionTypes(t *testing.T) {
	env := Env{Msg: schemaOf(t, "{a: int, b: int, f: float, s: string, t: time}")}
	cases := []struct{ name, src, result, err string }{
		{"int() is an int", "int(msg.f * 100)", "int", ""},
		{"float() is a float", "float(msg.a)", "float", ""},
		{"int times int is an int", "msg.a * msg.b + 1", "int", ""},
		{"int times float is a float", "msg.a * msg.f", "float", ""},
		{"string concatenation", `msg.s + "x"`, "string", ""},
		{"time arithmetic", `msg.t - duration("1h")`, "time", ""},
		{"int() of a bool", "int(true)", "", "invalid argument for int (type bool)"},
		{"string times int", "msg.s * 2", "", "invalid operation: * (mismatched types string and int)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkCompile(t, env, WantAny, c.src, c.result, c.err) })
	}
	out, _, err := runOn(t, env, "msg.a * msg.b", map[string]any{"a": math.MaxInt, "b": 2, "f": 1.0, "s": "", "t": time.Time{}})
	if err == nil {
		t.Errorf("schema ints overflowed silently: %v", out)
	}
}

// A schema's int and float fields take every number type DecodeJSON gives, exactly or not
// at all.
func TestCoerceNumberTypes(t *testing.T) {
	s := schemaOf(t, "{i: int, f: float}")
	cases := []struct {
		name  string
		field string
		in    any
		want  any
		err   string
	}{
		{"int from int", "i", 9007199254740993, 9007199254740993, ""},
		{"int from int64", "i", int64(-5), -5, ""},
		{"int from uint64", "i", uint64(7), 7, ""},
		{"int from uint64 beyond int64", "i", uint64(math.MaxUint64), nil, "i: expected int, got 18446744073709551615, out of range"},
		{"int from json.Number beyond int64", "i", json.Number("12345678901234567890"), nil, "out of range"},
		{"int from whole float", "i", 3.0, 3, ""},
		{"int from 2^53 as a float", "i", float64(1 << 53), 1 << 53, ""},
		{"int from a float beyond 2^53", "i", float64(1<<53) * 2, nil, "a float beyond 2^53"},
		{"int from a fraction", "i", 0.5, nil, "a number with a fraction (0.5)"},
		{"float from float", "f", 0.1, 0.1, ""},
		{"float from int", "f", 3, 3.0, ""},
		{"float from int64", "f", int64(3), 3.0, ""},
		{"float from uint64", "f", uint64(3), 3.0, ""},
		{"float from json.Number beyond int64", "f", json.Number("12345678901234567890"), 1.2345678901234567e19, ""},
		{"float from json.Number beyond float64", "f", json.Number("-1e400"), nil, "f: expected float, got -1e400, outside the range of a float"},
		{"float from a string", "f", "1", nil, "f: expected float, got a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := map[string]any{"i": 1, "f": 1.0}
			in[c.field] = c.in
			out, err := s.Coerce(in, "")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("want %q, got %v", c.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := out.(map[string]any)[c.field]; !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

// BenchmarkArithmetic compares integer arithmetic with the overflow checks (as Compile
// makes it) and without (expr-lang as it comes), on a body without a schema, on one VM.
func BenchmarkArithmetic(b *testing.B) {
	const src = "msg.a * msg.b + msg.a"
	var diags diag.List
	checked := Compile(exprValue(src), Env{}, WantAny, &diags)
	plain, err := exprlang.Compile(src, exprlang.Env(Env{}.types()))
	if checked == nil || err != nil {
		b.Fatal(diags.Err(), err)
	}
	vars := map[string]any{"msg": map[string]any{"a": 300, "b": 7}}
	for name, prog := range map[string]*vm.Program{"checked": checked.prog, "plain": plain} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var m vm.VM
			for b.Loop() {
				if out, err := m.Run(prog, vars); err != nil || out != 2400 {
					b.Fatal(out, err)
				}
			}
		})
	}
}
