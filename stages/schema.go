package stages

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// parseSchema reads a decode stage's schema from the file: a type name (string, int, float,
// bool, time, bytes, any, with a trailing ? for optional), a one-element list for a list type,
// or a mapping for an object whose "*" key, when present, admits other fields of its type. A
// key with a trailing ? is an optional field of any type: `after?: {id: int}`, `tags?: [string]`.
// It lives beside decode, not in expr: the expression layer knows schemas, not YAML.
func parseSchema(p *spec.Parser, n *yaml.Node, path string) *expr.Schema {
	n = spec.Resolve(n)
	switch {
	case spec.IsNull(n):
		p.Errorf(p.Pos(n), path, "missing type: write one of string, int, float, bool, time, bytes, any, [type] or a mapping")
		return &expr.Schema{Kind: expr.Any}
	case n.Kind == yaml.ScalarNode:
		s, ok := expr.NamedSchema(n.Value)
		if !ok {
			name := strings.TrimSuffix(strings.TrimSpace(n.Value), "?")
			names := expr.KindNames()
			p.Errorf(p.Pos(n), path, "unknown type %q: use one of %s, [type] or a mapping%s", n.Value, strings.Join(names, ", "), diag.DidYouMean(name, names))
			return &expr.Schema{Kind: expr.Any}
		}
		return s
	case n.Kind == yaml.SequenceNode:
		if len(n.Content) != 1 {
			p.Errorf(p.Pos(n), path, "a list type has exactly one element type, like [string]")
			return &expr.Schema{Kind: expr.List, Elem: &expr.Schema{Kind: expr.Any}}
		}
		return &expr.Schema{Kind: expr.List, Elem: parseSchema(p, n.Content[0], path+"[]")}
	default:
		s := &expr.Schema{Kind: expr.Object, Fields: map[string]*expr.Schema{}}
		for _, kv := range spec.MappingPairs(n) {
			k := kv[0].Value
			name, optional := strings.CutSuffix(k, "?")
			if name == "" {
				name, optional = k, false
			}
			f := parseSchema(p, kv[1], path+"."+name)
			f.Optional = f.Optional || optional
			if k = name; k == "*" {
				s.Open = f
				continue
			}
			if _, dup := s.Fields[k]; dup {
				p.Errorf(p.Pos(kv[0]), path+"."+k, "duplicate field %q", k)
			}
			s.Fields[k] = f
		}
		return s
	}
}
