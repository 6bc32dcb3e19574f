package stages

import (
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// TypeNames lists the registered stage types, sorted.
func TypeNames() []string {
	var names []string
	for _, t := range Types() {
		names = append(names, t.Name)
	}
	sort.Strings(names)
	return names
}

// ParseStage reads a stage mapping: its `type` picks the spec, and the mapping is parsed
// against common plus that type's fields. An unknown type is reported (with a suggestion)
// and yields a nil Type, as does a type allowed does not take here (a retry inside a retry);
// the common fields are still parsed so other checks can go on.
func ParseStage(p *spec.Parser, n *yaml.Node, path string, at diag.Pos, common []spec.Field, allowed func(*Type) bool) (*Type, *spec.Value) {
	n = spec.Resolve(n)
	var typ *Type
	fields := common
	if n != nil && n.Kind == yaml.MappingNode {
		for _, kv := range spec.MappingPairs(n) {
			if kv[0].Value != "type" {
				continue
			}
			name := kv[1].Value
			reg := Registry()
			var candidates []string
			for _, t := range TypeNames() {
				if allowed(reg[t]) {
					candidates = append(candidates, t)
				}
			}
			t, ok := reg[name]
			switch {
			case ok && allowed(t):
				typ = t
				fields = append(append([]spec.Field(nil), common...), t.Fields...)
			case ok:
				p.Errorf(p.Pos(kv[1]), path+".type", "a %s stage cannot be used here (use one of %s)", name, strings.Join(candidates, ", "))
			default:
				p.Errorf(p.Pos(kv[1]), path+".type", "unknown stage type %q: use one of %s%s", name, strings.Join(candidates, ", "), diag.DidYouMean(name, candidates))
			}
		}
	}
	if typ == nil && n != nil && n.Kind == yaml.MappingNode {
		// Without a type, parse the common fields only, and say nothing of the others.
		return nil, p.ParseObject(spec.KnownOnly(n, common), common, path, at)
	}
	return typ, p.ParseObject(n, fields, path, at)
}
