package spec

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

// TypeOf reads the `type` of mapping n, whose kind of thing is what ("sink", "source"). A
// type that is not one of names is reported at its value, with the nearest name, and gives "".
func (p *Parser) TypeOf(n *yaml.Node, path, what string, names []string) string {
	if n = Resolve(n); n == nil || n.Kind != yaml.MappingNode {
		return ""
	}
	for _, kv := range MappingPairs(n) {
		if kv[0].Value != "type" {
			continue
		}
		if slices.Contains(names, kv[1].Value) {
			return kv[1].Value
		}
		p.Errorf(p.Pos(kv[1]), path+".type", "unknown %s type %q: use one of %s%s", what, kv[1].Value, strings.Join(names, ", "), diag.DidYouMean(kv[1].Value, names))
	}
	return ""
}

// KnownOnly keeps the entries of mapping n that fields name: a mapping whose type is unknown
// is parsed for its common fields only, and nothing is said of the others.
func KnownOnly(n *yaml.Node, fields []Field) *yaml.Node {
	if n = Resolve(n); n == nil || n.Kind != yaml.MappingNode {
		return n
	}
	known := *n
	known.Content = nil
	for _, kv := range MappingPairs(n) {
		if _, ok := Lookup(fields, kv[0].Value); ok {
			known.Content = append(known.Content, kv[0], kv[1])
		}
	}
	return &known
}
