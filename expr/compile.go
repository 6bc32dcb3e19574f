package expr

import (
	"errors"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// Env is what an expression can see: the body's schema (nil before a decode stage) and the
// record's metadata, which is the same for every expression.
type Env struct {
	Msg   *Schema
	Reads *BodyReads // where what the expressions read is gathered; nil: nowhere
	// Raw: no decode stage comes before, on any path, so msg is the body's bytes and has no
	// fields to read.
	Raw bool
}

// Names are the variables every expression has; their order gives the bits of uses (vars.go).
var varNames = []string{"msg", "key", "headers", "topic", "partition", "offset", "timestamp"}

func (e Env) types() types.Map {
	msg := types.Type(types.Any)
	if e.Msg != nil {
		msg = e.Msg.Type()
	}
	return types.Map{
		"msg": msg,
		// key and headers["x"] are nil for a null key and a missing (or null) header, so
		// that `key == nil` and `headers["x"] ?? "none"` mean what they say. Their static
		// type cannot be string: expr-lang compiles `key == "a"` on a string to an opcode
		// that fails on nil rather than compare.
		"key":       types.Any,
		"headers":   types.TypeOf(map[string]any{}),
		"topic":     types.String,
		"partition": types.Int,
		"offset":    types.Int,
		"timestamp": types.TypeOf(time.Time{}),
	}
}

// Want is what an expression must compute.
type Want int

const (
	WantAny Want = iota
	WantBool
	WantString
)

// Program is a compiled expression. It is safe for concurrent use: each Run borrows a VM.
type Program struct {
	src    *spec.Value // the field: its text as written, before ${VAR} substitution, for errors
	prog   *vm.Program
	Result *Schema // the inferred result type (Any when unknown until run time)
	want   Want
	uses   uses // the variables it reads
	reads  []string
	vms    sync.Pool
	cmp    *comparison // decided without the VM when it can be (RunBool)
}

var unknownName = regexp.MustCompile(`^unknown (name|field) (\S+)`)

// Compile compiles the expression held by v against env. Problems are added to diags at their
// line and column inside the expression; the returned Program is nil when there were any.
func Compile(v *spec.Value, env Env, want Want, diags *diag.List) *Program {
	if v == nil || v.Str == "" {
		return nil
	}
	opts := append(append(numberFuncs(), overflowFuncs()...), functions...)
	opts = append(opts, nullableFunc, exprlang.Patch(nullableEquality{env.Msg}))
	prog, err := exprlang.Compile(v.Str, append(opts, exprlang.Env(env.types()))...)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			hint, atStart := env.compileHint(fe.Message, v)
			pos := v.ExprPos(fe.Line, fe.Column)
			if atStart {
				pos = v.ExprPos(1, 0)
			}
			diags.Add(pos, v.Path, "%s%s", v.Redact(fe.Message), hint) // `"x" "${KEY}"` would show the key
		} else {
			diags.Add(v.Pos, v.Path, "%s", v.Redact(err.Error()))
		}
		return nil
	}
	if !checkNames(prog.Node(), env, v, diags) || !checkRaw(prog.Node(), env, v, diags) || !checkReads(prog.Node(), env, v, diags) {
		return nil
	}
	fastFetch(prog)
	p := &Program{src: v, prog: prog, Result: inferSchema(prog.Node()), want: want, uses: usesOf(prog.Node()), reads: readsOf(prog.Node()),
		cmp: comparisonOf(prog.Node())}
	p.vms.New = func() any { return new(vm.VM) }
	env.Reads.add(p.reads, fetchesOnly(prog.Node()))
	switch k := p.Result.Kind; {
	case k == Any:
	case want == WantBool && k != Bool:
		diags.Add(v.ExprPos(1, 0), v.Path, "must be a condition (true or false), but it computes %s", p.Result)
		return nil
	case want == WantString && k != String:
		diags.Add(v.ExprPos(1, 0), v.Path, "must compute a string, but it computes %s", p.Result)
		return nil
	}
	return p
}

// hint is what to add to expr-lang's "unknown name x" or "unknown field x" (what is "name" or
// "field"): a field of msg written without msg., a field a map stage dropped, or the likely
// intended name; "" when there is none.
func (e Env) hint(what, word string) string {
	if what == "name" {
		if _, ok := e.Msg.Field(word); ok {
			return " (did you mean msg." + word + "?)"
		}
		var fields []string
		if e.Msg != nil && e.Msg.Kind == Object {
			fields = e.Msg.FieldNames()
		}
		s := diag.Suggest(word, append(slices.Clone(varNames), fields...))
		if slices.Contains(fields, s) && !slices.Contains(varNames, s) {
			s = "msg." + s
		}
		return diag.SuggestionText(s)
	}
	if by := e.Msg.droppedBy(word); by != "" {
		return " (it was dropped by " + by + ")"
	}
	return diag.DidYouMean(word, e.names())
}

// names lists every name an expression may mean: the variables and the known fields of msg.
func (e Env) names() []string {
	out := append([]string(nil), varNames...)
	var walk func(s *Schema)
	walk = func(s *Schema) {
		if s == nil {
			return
		}
		switch s.Kind {
		case Object:
			for k, f := range s.Fields {
				out = append(out, k)
				walk(f)
			}
		case List:
			walk(s.Elem)
		}
	}
	walk(e.Msg)
	sort.Strings(out)
	return out
}

// inferSchema turns the type expr-lang inferred for an expression into a Schema, looking
// into map literals with constant keys so their fields stay known downstream.
func inferSchema(n ast.Node) *Schema {
	if b, ok := n.(*ast.BuiltinNode); ok && (b.Name == "max" || b.Name == "min") {
		// expr-lang types max(1, 2.5) by its first argument (int); it returns the float.
		kinds := map[Kind]bool{}
		for _, a := range b.Arguments {
			kinds[schemaOfType(a.Type()).Kind] = true
		}
		switch {
		case len(kinds) == 1 && (kinds[Int] || kinds[Float]):
			return schemaOfType(b.Arguments[0].Type())
		case len(kinds) == 2 && kinds[Int] && kinds[Float]:
			return &Schema{Kind: Float}
		}
		return &Schema{Kind: Any}
	}
	if m, ok := n.(*ast.MapNode); ok {
		s := &Schema{Kind: Object, Fields: map[string]*Schema{}}
		for _, pn := range m.Pairs {
			pair, ok := pn.(*ast.PairNode)
			if !ok {
				return AnyMap()
			}
			k, ok := pair.Key.(*ast.StringNode)
			if !ok {
				return AnyMap()
			}
			s.Fields[k.Value] = inferSchema(pair.Value)
		}
		return s
	}
	return schemaOfType(n.Type())
}

func schemaOfType(t reflect.Type) *Schema {
	if t == nil {
		return &Schema{Kind: Any}
	}
	if t == reflect.TypeOf(time.Time{}) {
		return &Schema{Kind: Time}
	}
	switch t.Kind() {
	case reflect.String:
		return &Schema{Kind: String}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Schema{Kind: Int}
	case reflect.Float32, reflect.Float64:
		return &Schema{Kind: Float}
	case reflect.Bool:
		return &Schema{Kind: Bool}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &Schema{Kind: Bytes}
		}
		return &Schema{Kind: List, Elem: schemaOfType(t.Elem())}
	case reflect.Map:
		return AnyMap()
	}
	return &Schema{Kind: Any}
}

// Source is the expression as written.
func (p *Program) Source() string { return p.prog.Source().String() }

// Written is the expression as the file writes it, ${VAR} unsubstituted: for messages, as a
// variable may hold a secret.
func (p *Program) Written() string { return p.src.Written() }

// Run evaluates the program against vars.
func (p *Program) Run(vars Vars) (any, error) {
	m := p.vms.Get().(*vm.VM)
	out, err := m.Run(p.prog, map[string]any(vars))
	p.vms.Put(m)
	if err != nil {
		return nil, p.runtimeError(err)
	}
	return out, nil
}

// RunBool evaluates a condition; a nil result counts as false.
func (p *Program) RunBool(vars Vars) (bool, error) {
	if p.cmp != nil {
		if result, ok := p.cmp.decide(vars); ok {
			return result, nil
		}
	}
	out, err := p.Run(vars)
	if err != nil || out == nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, p.runtimeError(errors.New("computed " + strconv.Quote(reflect.TypeOf(out).String()) + ", not true or false"))
	}
	return b, nil
}

// runtimeError quotes the expression as written in the file, with ${VAR} where the author put
// it: the program ran the substituted text, and a variable may hold a secret (an API key in a
// URL). expr-lang's error shows the line it failed on with a caret; it is pointed at the written
// text too, and what substitution put into the message itself is named by its reference.
func (p *Program) runtimeError(err error) *RuntimeError {
	written := p.src.Written()
	var fe *file.Error
	if errors.As(err, &fe) {
		at := &file.Error{Location: file.Location{From: p.src.WrittenOffset(fe.From), To: p.src.WrittenOffset(fe.To)},
			Message: p.src.Redact(fe.Message), Prev: fe.Prev}
		err = at.Bind(file.NewSource(written))
	}
	return &RuntimeError{Expr: written, Err: err}
}

// RuntimeError is an expression that failed on a record (a nil field, a bad conversion).
type RuntimeError struct {
	Expr string // as written in the file
	Err  error
}

func (e *RuntimeError) Error() string {
	msg := e.Err.Error()
	var fe *file.Error
	if errors.As(e.Err, &fe) {
		// Without expr-lang's snippet of the source under a caret: the expression is quoted
		// already, and the reason goes into one DLQ header and one log line.
		msg = fe.Message
	}
	return "expression " + strconv.Quote(e.Expr) + ": " + msg
}
func (e *RuntimeError) Unwrap() error { return e.Err }
