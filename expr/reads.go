package expr

import (
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// readsOf lists what an expression reads, as paths: "msg.amount", "headers.x", "key". A
// member read by a computed name (msg[msg.field]) stands for its whole parent.
func readsOf(n ast.Node) []string {
	var v readsVisitor
	ast.Walk(&n, &v)
	var out []string
	for _, p := range v.paths { // keep the longest: msg.card.bin, not the msg.card it starts with
		longer := slices.ContainsFunc(v.paths, func(q string) bool { return q != p && Covers(p, q) })
		if (!longer || slices.Contains(v.whole, p)) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

type readsVisitor struct {
	paths []string
	whole []string // read by a computed member name: all of it
}

func (v *readsVisitor) Visit(n *ast.Node) {
	if p, ok := pathOf(*n); ok {
		v.paths = append(v.paths, p)
		if m, ok := (*n).(*ast.MemberNode); ok && !constant(m.Property) {
			v.whole = append(v.whole, p)
		}
	}
}

func constant(n ast.Node) bool {
	switch n.(type) {
	case *ast.StringNode, *ast.IntegerNode:
		return true
	}
	return false
}

// pathOf is the path a member chain reads, when it starts at a variable.
func pathOf(n ast.Node) (string, bool) {
	switch t := n.(type) {
	case *ast.IdentifierNode:
		if slices.Contains(varNames, t.Value) {
			return t.Value, true
		}
	case *ast.ChainNode:
		return pathOf(t.Node)
	case *ast.MemberNode:
		base, ok := pathOf(t.Node)
		if !ok {
			return "", false
		}
		switch p := t.Property.(type) {
		case *ast.StringNode:
			return base + "." + p.Value, true
		case *ast.IntegerNode:
			return base + "." + strconv.Itoa(p.Value), true
		}
		return base, true // a computed name: all of base
	}
	return "", false
}

// Covers reports whether reading path outer reads inner too: msg covers msg.a and msg.a.b.
func Covers(outer, inner string) bool {
	return outer == inner || strings.HasPrefix(inner, outer+".")
}

// Reads lists the paths the program reads (see readsOf).
func (p *Program) Reads() []string { return p.reads }
