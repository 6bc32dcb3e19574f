package pipeline

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// splitRunTogether finds the stages and sinks that hold a key twice: most often two entries
// written without the "- " that starts the second, which YAML reads as one mapping with
// repeated keys. Each is reported at the repeated key, and, when the entry holds a second
// name or type, split there, so that both are checked as the author meant them.
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

// splitEntry is the block mapping item cut before the first key it repeats, when a name or
// type repeats from there on: a second entry began at that key. A repeated field with no
// second name or type after it may be a plain duplicate, or the start of an entry that lacks
// both; the message says both, and the repeat is dropped (the field parser would only say
// "duplicate field" of it). Keys that are no field of the entry are left to the field
// parser, which calls them unknown.
func splitEntry(p *spec.Parser, item *yaml.Node, what, path string) []*yaml.Node {
	if item.Kind != yaml.MappingNode || item.Style&yaml.FlowStyle != 0 {
		return []*yaml.Node{item}
	}
	known := entryFields(item, what)
	seen := map[string]int{} // key → the line it was first given on
	for i := 0; i+1 < len(item.Content); i += 2 {
		k := item.Content[i]
		firstLine, repeated := seen[k.Value]
		if !repeated {
			seen[k.Value] = k.Line
			continue
		}
		if !known[k.Value] {
			continue
		}
		start := itemStart(k, item.Content[i+1])
		if !repeatsIdentity(item.Content[i:], seen) {
			p.Errorf(p.Pos(k), path+"."+k.Value, "a second %s in one %s (the first is on line %d): keep one; or, if a second %s starts here, start it with \"%s\" in line with the \"- \" of line %d, and give it a name and a type",
				k.Value, what, firstLine, what, start, item.Line)
			dropped := *item
			dropped.Content = slices.Delete(slices.Clone(item.Content), i, i+2)
			return splitEntry(p, &dropped, what, path)
		}
		p.Errorf(p.Pos(k), path+"."+k.Value, "a second %s in one %s: two %ss run together, as no \"- \" starts the second; write \"%s\" in line with the \"- \" of line %d",
			k.Value, what, what, start, item.Line)
		first, rest := *item, *item
		first.Content = slices.Clip(item.Content[:i])
		rest.Content = item.Content[i:]
		rest.Line, rest.Column = k.Line, k.Column
		return append([]*yaml.Node{&first}, splitEntry(p, &rest, what, path)...)
	}
	return []*yaml.Node{item}
}

// repeatsIdentity reports whether pairs hold a name or a type already seen: a second entry's.
func repeatsIdentity(pairs []*yaml.Node, seen map[string]int) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if k := pairs[i].Value; k == "name" || k == "type" {
			if _, ok := seen[k]; ok {
				return true
			}
		}
	}
	return false
}

// itemStart is how the second entry's first line would start: "- key: value" for a short
// scalar, "- key:" for a longer value or one that holds more.
func itemStart(k, v *yaml.Node) string {
	if v.Kind == yaml.ScalarNode && v.Value != "" && !strings.Contains(v.Value, "\n") && len(v.Value) <= 40 {
		return "- " + k.Value + ": " + v.Value
	}
	return "- " + k.Value + ":"
}

// entryFields are the keys an entry of a list of what may hold: the common fields, and
// those of the type its first "type" names, if it names one.
func entryFields(item *yaml.Node, what string) map[string]bool {
	var fields []spec.Field
	typeName := ""
	for i := 0; i+1 < len(item.Content); i += 2 {
		if item.Content[i].Value == "type" {
			typeName = item.Content[i+1].Value
			break
		}
	}
	switch what {
	case "stage":
		fields = stages.CommonFields
		if t := stages.Registry()[typeName]; t != nil {
			fields = append(slices.Clip(fields), t.Fields...)
		}
	case "sink":
		fields = sinks.CommonFields
		if t := sinks.Registry()[typeName]; t != nil {
			fields = append(slices.Clip(fields), t.Fields...)
		}
	}
	known := map[string]bool{}
	for _, f := range fields {
		known[f.Name] = true
	}
	return known
}
