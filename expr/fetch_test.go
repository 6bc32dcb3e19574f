package expr

import (
	"fmt"
	"testing"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// fastFetch changes how a field is read, never what is read nor how it fails: each expression
// runs as expr-lang compiled it and as rewritten, on the same variables, with the same result
// or the same error.
func TestFastFetchAgrees(t *testing.T) {
	body := map[string]any{"a": 1, "b": map[string]any{"c": "x"}, "items": []any{map[string]any{"sku": "s1", "qty": 2}}}
	cases := []struct {
		name      string
		src       string
		msg       any
		rewritten int // fetches made direct
	}{
		{"a field of the body", `msg.a`, body, 1},
		{"a field it lacks", `msg.zz`, body, 1},
		{"a nested field", `msg.b.c`, body, 2},
		{"by index", `msg["a"]`, body, 1},
		{"optional chaining on nil", `msg?.a`, nil, 1},
		{"a field of nil fails", `msg.a`, nil, 1},
		{"a field of a list fails", `msg.a`, []any{1}, 1},
		{"a field of a string fails", `msg.a`, "text", 1},
		{"a map of another type", `msg.a`, map[string]string{"a": "x"}, 1},
		{"a key a condition picks: a jump lands on the fetch", `msg[flag ? "a" : "zz"]`, body, 0},
		{"in predicates", `all(msg.items, .qty > 1) && map(msg.items, .sku)[0] == "s1"`, body, 4},
		{"a list's element", `msg.items[0].qty`, body, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, flag := range []bool{true, false} {
				env := map[string]any{"msg": c.msg, "flag": flag}
				plain, err := exprlang.Compile(c.src)
				if err != nil {
					t.Fatal(err)
				}
				fast, _ := exprlang.Compile(c.src)
				fastFetch(fast)
				if n := count(fast.Bytecode, vm.OpCallTyped) - count(plain.Bytecode, vm.OpCallTyped); n != c.rewritten {
					t.Fatalf("%d fetches rewritten, want %d:\n%s", n, c.rewritten, fast.Disassemble())
				}
				want, werr := vm.Run(plain, env)
				got, err := vm.Run(fast, env)
				if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(err) != fmt.Sprint(werr) {
					t.Fatalf("flag %v: rewritten %v, %v; as compiled %v, %v", flag, got, err, want, werr)
				}
			}
		})
	}
}

func count(code []vm.Opcode, op vm.Opcode) int {
	n := 0
	for _, o := range code {
		if o == op {
			n++
		}
	}
	return n
}

// A field of a decoded body is read without an allocation (by reflection, it was one): a
// program reading msg.amount allocates what one reading msg does, the VM's own.
func TestFastFetchAllocates(t *testing.T) {
	env := map[string]any{"msg": map[string]any{"amount": 12.5}}
	allocs := func(src string) float64 {
		prog, err := exprlang.Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		fastFetch(prog)
		var m vm.VM
		return testing.AllocsPerRun(100, func() { _, _ = m.Run(prog, env) })
	}
	if field, whole := allocs(`msg.amount`), allocs(`msg`); field != whole {
		t.Fatalf("msg.amount: %v allocations a run; msg: %v", field, whole)
	}
}

// Compile rewrites what it compiles: a pipeline's expressions read fields directly, with
// and without a schema, and the schema's type checks are those of the expression as written.
func TestCompileFetchesFast(t *testing.T) {
	cases := []struct {
		name   string
		env    Env
		src    string
		result string
	}{
		{"a filter on a schema's float", Env{Msg: schemaOf(t, `{amount: float, "*": any}`)}, `msg.amount > 0`, "bool"},
		{"a field without a schema", Env{}, `msg.amount > 0`, "bool"},
		{"a nested field", Env{Msg: schemaOf(t, `{c: {name: string}}`)}, `upper(msg.c.name)`, "string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var diags diag.List
			p := Compile(exprValue(c.src), c.env, WantAny, &diags)
			if p == nil {
				t.Fatal(diags.Err())
			}
			if got := p.Result.String(); got != c.result {
				t.Errorf("computes %s, want %s", got, c.result)
			}
			if n := count(p.prog.Bytecode, vm.OpFetch); n != 0 {
				t.Errorf("%d reads left to reflection:\n%s", n, p.prog.Disassemble())
			}
			vars := NewBinder(p).Bind(&record.Record{Decoded: true, Msg: map[string]any{"amount": 2.5, "c": map[string]any{"name": "x"}}})
			if out, err := p.Run(vars); err != nil || (out != true && out != "X") {
				t.Errorf("got %v, %v", out, err)
			}
		})
	}
}
