package expr

import (
	"fmt"
	"math"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// A condition `msg.FIELD OP NUMBER` decided without the VM decides as the VM does, errors
// included, whatever the field holds and whether the body is a map or a lazy body.
func TestComparisonAsTheVM(t *testing.T) {
	conditions := []struct {
		src  string
		fast bool
	}{
		{"msg.n > 0", true},
		{"msg.n >= 1000", true},
		{"msg.n < 2.5", true},
		{"msg.n <= 7", true},
		{`msg["n"] > 1`, true},
		{"msg.n == 5", false}, // == and != go through the nullable patch: the VM's
		{"msg?.n > 0", false},
		{"msg.n > -1", true}, // folded into a constant
		{"0 < msg.n", false},
	}
	values := map[string]string{
		"an int": `5`, "a negative int": `-3`, "the constant": `1000`, "a float": `999.99`,
		"a float equal to an int": `1000.0`, "a large int": `9007199254740993`, "null": `null`,
		"a string": `"12"`, "true": `true`, "an object": `{"x": 1}`,
	}
	bodies := map[string]string{"missing": `{"other": 1}`}
	for name, v := range values {
		bodies[name] = fmt.Sprintf(`{"n": %s}`, v)
	}
	// Without a schema, and with one that types the field (a compiler that specialized its
	// instructions by type would disagree with a fast path on a value of another type).
	envs := map[string]Env{"no schema": {}, "n: float": {Msg: &Schema{Kind: Object, Fields: map[string]*Schema{"n": {Kind: Float, Optional: true}},
		Open: &Schema{Kind: Any}}}, "n: int": {Msg: &Schema{Kind: Object, Fields: map[string]*Schema{"n": {Kind: Int, Optional: true}}, Open: &Schema{Kind: Any}}}}
	for envName, env := range envs {
		for _, c := range conditions {
			testCondition(t, envName, env, c.src, c.fast, bodies)
		}
	}
	// Values a decode stage's schema gives that JSON does not: NaN and infinities.
	p := Compile(&spec.Value{Str: "msg.n >= 0"}, Env{}, WantBool, new(diag.List))
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1)} {
		got, _ := p.RunBool(Vars{"msg": map[string]any{"n": f}})
		want, _ := vmBool(p, Vars{"msg": map[string]any{"n": f}})
		if got != want {
			t.Errorf("msg.n >= 0 with %v: %v; the VM: %v", f, got, want)
		}
	}
}

// testCondition runs src compiled against env on each body both ways, and compares.
func testCondition(t *testing.T, envName string, env Env, src string, fast bool, bodies map[string]string) {
	t.Helper()
	var d diag.List
	p := Compile(&spec.Value{Str: src}, env, WantBool, &d)
	if p == nil {
		t.Fatalf("%s (%s): %v", src, envName, d.Err())
	}
	if got := p.cmp != nil; got != fast {
		t.Errorf("%s (%s): decided without the VM %v, want %v", src, envName, got, fast)
	}
	for name, body := range bodies {
		lazy, m := lazyAndMap(t, body, nil)
		for kind, msg := range map[string]any{"map": m, "lazy": lazy} {
			got, gotErr := p.RunBool(Vars{"msg": msg})
			want, wantErr := vmBool(p, Vars{"msg": msg})
			if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("%s (%s) with %s (%s): %v, %v; the VM: %v, %v", src, envName, name, kind, got, gotErr, want, wantErr)
			}
		}
	}
}

// vmBool is RunBool through the VM alone.
func vmBool(p *Program, vars Vars) (bool, error) {
	cmp := p.cmp
	p.cmp = nil
	defer func() { p.cmp = cmp }()
	return p.RunBool(vars)
}

func BenchmarkComparison(b *testing.B) {
	p := Compile(&spec.Value{Str: "msg.amount > 0"}, Env{}, WantBool, new(diag.List))
	vars := Vars{"msg": map[string]any{"order_id": "o-1", "amount": 12.5, "region": "eu"}}
	for _, fast := range []bool{true, false} {
		b.Run(fmt.Sprintf("fast=%v", fast), func(b *testing.B) {
			cmp := p.cmp
			if !fast {
				p.cmp = nil
			}
			defer func() { p.cmp = cmp }()
			for b.Loop() {
				if _, err := p.RunBool(vars); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
