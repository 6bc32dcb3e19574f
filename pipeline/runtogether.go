package pipeline

import (
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/spec"
)

// splitRunTogether finds the stages and sinks that hold a second name or type: two entries
// written without the "- " that starts the second, which YAML reads as one mapping with
// repeated keys. Each is reported at the line that starts the second entry, and split there,
// so that both are checked as the author meant them.
func splitRunTogether(p *spec.Parser, root *yaml.Node) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		what := map[string]string{"stages": "stage", "sinks": "sink"}[root.Content[i].Value]
		list := spec.Resolve(root.Content[i+1])
		if what == "" || list == nil || list.Kind != yaml.SequenceNode {
			continue
		}
		var items []*yaml.Node
		for j, item := range list.Content {
			items = append(items, splitEntry(p, item, what, fmt.Sprintf("%s[%d]", root.Content[i].Value, j))...)
		}
		list.Content = items
	}
}

// splitEntry is the block mapping item cut before each key that repeats its name or type.
func splitEntry(p *spec.Parser, item *yaml.Node, what, path string) []*yaml.Node {
	if item.Kind != yaml.MappingNode || item.Style&yaml.FlowStyle != 0 {
		return []*yaml.Node{item}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(item.Content); i += 2 {
		k := item.Content[i]
		if k.Value != "name" && k.Value != "type" {
			continue
		}
		if !seen[k.Value] {
			seen[k.Value] = true
			continue
		}
		p.Errorf(p.Pos(k), path+"."+k.Value, "a second %s in one %s: two %ss run together, as no \"- \" starts the second; write \"- %s: %s\" in line with the \"- \" of line %d",
			k.Value, what, what, k.Value, item.Content[i+1].Value, item.Line)
		first, rest := *item, *item
		first.Content = slices.Clip(item.Content[:i])
		rest.Content = item.Content[i:]
		rest.Line, rest.Column = k.Line, k.Column
		return append([]*yaml.Node{&first}, splitEntry(p, &rest, what, path)...)
	}
	return []*yaml.Node{item}
}
