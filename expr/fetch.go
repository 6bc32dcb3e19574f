package expr

import (
	"reflect"

	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// fetchKind is the OpCallTyped kind of a func(any) any: a call the VM makes without reflection
// or an argument slice.
var fetchKind, fetchKindOK = checker.TypedFuncIndex(reflect.TypeFor[func(any) any](), false)

// fastFetch rewrites prog's reads of a named field (msg.amount, msg["amount"]), which expr-lang
// runs through runtime.Fetch: by reflection, an allocation per read of a map[string]any, the
// decoded body's type (4% of a pipeline's CPU). Each `OpPush "name"; OpFetch` becomes
// `OpPush fetcher; OpCallTyped`, fetcher being a function that reads a map[string]any directly
// and hands anything else to runtime.Fetch, so that every other value, and every error (at the
// same instruction, so at the same place in the expression), is what it was. The two
// instructions take the places of the two they replace, so no jump moves; a pair that a jump
// lands between (msg[c ? "a" : "b"]) is left as it is.
func fastFetch(prog *vm.Program) {
	if !fetchKindOK {
		return
	}
	code, args := prog.Bytecode, prog.Arguments
	targets := jumpTargets(code, args)
	for i := 0; i+1 < len(code); i++ {
		if code[i] != vm.OpPush || code[i+1] != vm.OpFetch || targets[i+1] {
			continue
		}
		name, ok := prog.Constants[args[i]].(string)
		if !ok {
			continue
		}
		prog.Constants = append(prog.Constants, fetcher(name))
		code[i], args[i] = vm.OpPush, len(prog.Constants)-1
		code[i+1], args[i+1] = vm.OpCallTyped, fetchKind
	}
}

// fetcher reads field name of a value as runtime.Fetch does, without reflection for a
// map[string]any; of a lazy body (*record.Object), which Fetch cannot read, as the map it
// stands for would be read.
func fetcher(name string) func(any) any {
	return func(from any) any {
		switch m := from.(type) {
		case map[string]any:
			return m[name] // nil when absent, as Fetch has it
		case *record.Object:
			v, _ := m.Get(name)
			return v
		}
		return runtime.Fetch(from, name)
	}
}

// jumpTargets marks the instructions that a jump lands on.
func jumpTargets(code []vm.Opcode, args []int) map[int]bool {
	targets := map[int]bool{}
	for i, op := range code {
		switch op {
		case vm.OpJump, vm.OpJumpIfTrue, vm.OpJumpIfFalse, vm.OpJumpIfNil, vm.OpJumpIfNotNil, vm.OpJumpIfEnd:
			targets[i+1+args[i]] = true // the VM has moved past the jump when it adds its offset
		case vm.OpJumpBackward:
			targets[i+1-args[i]] = true
		}
	}
	return targets
}
