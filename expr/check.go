package expr

import (
	"slices"
	"strings"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// This file checks what expr-lang's type checker cannot see in a compiled expression: reads
// of fields an open schema does not declare (likely misspelt), of fields a map stage dropped,
// and of optional fields in places where null fails.

// msgPath is a read of the body through constant names: msg.a.b is {a, b}.
type msgPath struct {
	names   []string
	chained bool     // read through ?. somewhere: null when a link is missing
	node    ast.Node // the outermost node of the read
}

func (p msgPath) String() string { return "msg." + strings.Join(p.names, ".") }

// msgPathOf is the read n makes of the body, when it is one.
func msgPathOf(n ast.Node) (msgPath, bool) {
	switch t := n.(type) {
	case *ast.ChainNode:
		p, ok := msgPathOf(t.Node)
		p.chained, p.node = ok, n
		return p, ok
	case *ast.MemberNode:
		name, ok := t.Property.(*ast.StringNode)
		if !ok {
			return msgPath{}, false
		}
		if id, ok := t.Node.(*ast.IdentifierNode); ok && id.Value == "msg" {
			return msgPath{names: []string{name.Value}, chained: t.Optional, node: n}, true
		}
		p, ok := msgPathOf(t.Node)
		if !ok {
			return msgPath{}, false
		}
		p.names = append(slices.Clip(p.names), name.Value)
		p.chained = p.chained || t.Optional
		p.node = n
		return p, true
	}
	return msgPath{}, false
}

// lookup is what the schema msg says of the read p: the schema of what it reads (nil when
// unknown) and whether it may be null there: a link of it is optional, or it is read
// through ?. and not all of it is known.
func (p msgPath) lookup(msg *Schema) (s *Schema, nullable bool) {
	s = msg
	for _, name := range p.names {
		f, ok := s.Field(name)
		if !ok {
			return nil, nullable || p.chained
		}
		s = f
		nullable = nullable || s.Optional
	}
	return s, nullable
}

// nullableFn is the function the == and != of an optional field go through (nullableEquality).
const nullableFn = "pythia_nullable"

var nullableFunc = exprlang.Function(nullableFn, func(args ...any) (any, error) { return args[0], nil }, new(func(any) any))

// nullableEquality makes == and != with an optional field compare null as unequal. For two
// strings or two ints expr-lang compiles them to opcodes that fail on null rather than
// compare it; an operand of unknown static type (what nullableFn returns) gets its general
// comparison. It patches the tree before expr-lang checks it.
type nullableEquality struct{ msg *Schema }

func (v nullableEquality) Visit(n *ast.Node) {
	b, ok := (*n).(*ast.BinaryNode)
	if !ok || (b.Operator != "==" && b.Operator != "!=") {
		return
	}
	for _, side := range []*ast.Node{&b.Left, &b.Right} {
		if p, ok := msgPathOf(*side); ok {
			if _, nullable := p.lookup(v.msg); nullable {
				call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: nullableFn}, Arguments: []ast.Node{*side}}
				call.SetLocation((*side).Location())
				ast.Patch(side, call)
			}
		}
	}
}

// nullSafe are the functions that take null as an argument without failing.
var nullSafe = []string{nullableFn, "string", "toJSON", "type", "urlquery", "urlpath"}

// failsOnNull are the operators that fail when an operand is null.
var failsOnNull = []string{"+", "-", "*", "/", "%", "**", "^", "<", ">", "<=", ">=", "..", "!", "not"}

// readCheck walks a compiled expression for reads the type checker lets through.
type readCheck struct {
	env    Env
	v      *spec.Value
	diags  *diag.List
	src    []rune
	guards []string // paths compared with nil somewhere in the expression: the author saw to null
	seen   map[string]bool
}

// checkReads reports undeclared reads (warnings), reads of dropped fields (errors) and
// optional fields used where null fails (warnings) in the compiled tree n; false when it
// added an error.
func checkReads(n ast.Node, env Env, v *spec.Value, diags *diag.List) bool {
	if env.Msg == nil {
		return true
	}
	c := &readCheck{env: env, v: v, diags: diags, src: []rune(v.Str), seen: map[string]bool{}}
	ast.Find(n, func(n ast.Node) bool {
		if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "==" || b.Operator == "!=") {
			for _, pair := range [][2]ast.Node{{b.Left, b.Right}, {b.Right, b.Left}} {
				if _, isNil := pair[1].(*ast.NilNode); isNil {
					if p, ok := msgPathOf(unwrapNullable(pair[0])); ok {
						c.guards = append(c.guards, p.String())
					}
				}
			}
		}
		return false
	})
	before := len(*diags)
	ast.Find(n, func(n ast.Node) bool {
		c.visit(n)
		return false
	})
	for _, d := range (*diags)[before:] {
		if !d.Warning {
			return false
		}
	}
	return true
}

func unwrapNullable(n ast.Node) ast.Node {
	if call, ok := n.(*ast.CallNode); ok {
		if id, ok := call.Callee.(*ast.IdentifierNode); ok && id.Value == nullableFn {
			return call.Arguments[0]
		}
	}
	return n
}

func (c *readCheck) visit(n ast.Node) {
	if p, ok := msgPathOf(n); ok {
		c.declared(p)
	}
	switch t := n.(type) {
	case *ast.BinaryNode:
		if slices.Contains(failsOnNull, t.Operator) {
			c.notNull(t.Left, "the operator "+t.Operator)
			c.notNull(t.Right, "the operator "+t.Operator)
		}
	case *ast.UnaryNode:
		if slices.Contains(failsOnNull, t.Operator) {
			c.notNull(t.Node, "the operator "+t.Operator)
		}
	case *ast.CallNode:
		if id, ok := t.Callee.(*ast.IdentifierNode); ok && !slices.Contains(nullSafe, id.Value) {
			what := id.Value + "()"
			for op, checked := range checkedOps { // an operator the overflow check turned into a call
				if checked.fn == id.Value {
					what = "the operator " + op
				}
			}
			for _, a := range t.Arguments {
				c.notNull(a, what)
			}
		}
	case *ast.BuiltinNode:
		if !slices.Contains(nullSafe, t.Name) && len(t.Arguments) > 0 {
			c.notNull(t.Arguments[0], t.Name+"()")
		}
	case *ast.ConditionalNode:
		c.notNull(t.Cond, "a condition")
	case *ast.MemberNode:
		if !t.Optional {
			c.notNull(t.Node, "reading a member of it")
		}
	case *ast.SliceNode:
		c.notNull(t.Node, "a slice of it")
	}
}

// declared reports the first name of p that the schema does not have: an error when a map
// stage dropped it, a warning when an open object does not declare it.
func (c *readCheck) declared(p msgPath) {
	s := c.env.Msg
	for i, name := range p.names {
		if f, ok := s.Field(name); ok {
			s = f
			continue
		}
		if s == nil || s.Kind != Object {
			return // an any: nothing is known of what is in it
		}
		read := msgPath{names: p.names[:i+1]}.String()
		if c.seen[read] {
			return
		}
		c.seen[read] = true
		pos := c.pos(p.node)
		if by, ok := s.Dropped[name]; ok {
			c.diags.Add(pos, c.v.Path, "%s was dropped by %s: it is null from there on", read, by)
			return
		}
		if s.Unchecked {
			return // no schema to hold it to
		}
		var names []string
		for _, f := range s.FieldNames() {
			names = append(names, msgPath{names: append(slices.Clip(p.names[:i]), f)}.String())
		}
		c.diags.Warn(pos, c.v.Path, "%s is not in the schema%s; \"*\" lets it through unchecked, as null when absent: declare it (%s: any? if its type varies) to have it checked",
			read, diag.DidYouMean(read, names), name)
		return
	}
}

// notNull warns when n reads an optional field that the expression does not test for null,
// in a place (what) where null fails.
func (c *readCheck) notNull(n ast.Node, what string) {
	p, ok := msgPathOf(n)
	if !ok {
		return
	}
	s, nullable := p.lookup(c.env.Msg)
	read := p.String()
	if !nullable || slices.Contains(c.guards, read) || c.seen["null "+read] {
		return
	}
	if s != nil && !s.Optional && !p.chained {
		return // null only where an optional field on its way is: reading into that is reported
	}
	c.seen["null "+read] = true
	typ := "it is read through ?."
	switch {
	case s != nil && s.Optional:
		typ = "its type is " + s.String()
	case s != nil:
		typ = "it is read through ?. past an optional field"
	}
	fix := ""
	if def := zeroOf(s); def != "" {
		fix = read + " ?? " + def + ", or "
	}
	c.diags.Warn(c.pos(n), c.v.Path, "%s may be null (%s), and %s fails on null: the record would go to the DLQ; write %stest %s != nil first",
		read, typ, what, fix, read)
}

// zeroOf is a default to write after ?? for a value of schema s, "" when there is no obvious one.
func zeroOf(s *Schema) string {
	if s == nil {
		return ""
	}
	return map[Kind]string{String: `""`, Int: "0", Float: "0.0", Bool: "false", List: "[]"}[s.Kind]
}

// pos is where node n starts in the file: for a read, where its msg is.
func (c *readCheck) pos(n ast.Node) diag.Pos {
	for {
		switch t := n.(type) {
		case *ast.ChainNode:
			n = t.Node
			continue
		case *ast.MemberNode:
			n = t.Node
			continue
		}
		break
	}
	line, col := lineCol(c.src, n.Location())
	return c.v.ExprPos(line, col)
}

// lineCol turns a node's location (rune offsets into the expression) into the 1-based line
// and 0-based column expr-lang's errors use.
func lineCol(src []rune, loc file.Location) (line, col int) {
	line = 1
	for i := 0; i < loc.From && i < len(src); i++ {
		col++
		if src[i] == '\n' {
			line, col = line+1, 0
		}
	}
	return line, col
}

// Narrow is the schema of the records a condition lets through: a field it tests with
// `!= nil` (alone, or as one side of an &&) is there, so it is no longer optional
// downstream, nor is any field on its way.
func (p *Program) Narrow(s *Schema) *Schema {
	var conjuncts func(n ast.Node)
	conjuncts = func(n ast.Node) {
		b, ok := n.(*ast.BinaryNode)
		if !ok {
			return
		}
		switch b.Operator {
		case "&&", "and":
			conjuncts(b.Left)
			conjuncts(b.Right)
		case "!=":
			for _, pair := range [][2]ast.Node{{b.Left, b.Right}, {b.Right, b.Left}} {
				if _, isNil := pair[1].(*ast.NilNode); isNil {
					if path, ok := msgPathOf(unwrapNullable(pair[0])); ok {
						s = s.present(path.names)
					}
				}
			}
		}
	}
	conjuncts(p.prog.Node())
	return s
}

// present is a copy of s in which the field at path, and every field on its way, is not
// optional; s itself when the path leaves what s declares.
func (s *Schema) present(path []string) *Schema {
	f, ok := s.Field(path[0])
	if !ok {
		return s
	}
	g := *f
	g.Optional = false
	if len(path) > 1 {
		g = *g.present(path[1:])
		g.Optional = false
	}
	return s.With(path[0], &g)
}

// checkRaw reports the first field read of msg where msg is still bytes (Env.Raw): every
// record would fail there at run time. False when it reported one.
func checkRaw(n ast.Node, env Env, v *spec.Value, diags *diag.List) bool {
	if !env.Raw {
		return true
	}
	var read *msgPath
	ast.Find(n, func(n ast.Node) bool {
		if p, ok := msgPathOf(n); ok && (read == nil || n.Location().From < read.node.Location().From) {
			read = &p
		}
		return false
	})
	if read == nil {
		return true
	}
	c := &readCheck{v: v, src: []rune(v.Str)}
	diags.Add(c.pos(read.node), v.Path, "msg is still bytes here: no decode stage comes before, so %s has no field to read (add a decode stage before it)",
		msgPath{names: read.names[:1]})
	return false
}

// checkNames reports a name that is no variable, no let and no function: expr-lang's checker
// lets one through in a method's arguments (timestamp.Format(RFC3339)), where it would be null
// at run time. False when it reported one.
func checkNames(n ast.Node, env Env, v *spec.Value, diags *diag.List) bool {
	known := map[string]bool{"$env": true} // expr-lang's name for the whole environment
	for _, name := range varNames {
		known[name] = true
	}
	ast.Find(n, func(n ast.Node) bool {
		switch t := n.(type) {
		case *ast.VariableDeclaratorNode:
			known[t.Name] = true
		case *ast.CallNode:
			if id, ok := t.Callee.(*ast.IdentifierNode); ok {
				known[id.Value] = true
			}
		}
		return false
	})
	src := []rune(v.Str)
	ok := true
	ast.Find(n, func(n ast.Node) bool {
		if id, isID := n.(*ast.IdentifierNode); isID && !known[id.Value] {
			known[id.Value] = true // once
			line, col := lineCol(src, id.Location())
			diags.Add(v.ExprPos(line, col), v.Path, "unknown name %s%s", id.Value, env.hint("name", id.Value))
			ok = false
		}
		return false
	})
	return ok
}
