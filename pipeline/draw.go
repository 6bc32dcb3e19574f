package pipeline

import (
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/spec"
)

// shapes gives each stage type its Graphviz node shape.
var shapes = map[string]string{
	"decode": "parallelogram",
	"filter": "invtrapezium",
	"map":    "box",
	"enrich": "component",
	"retry":  "doubleoctagon",
	"branch": "diamond",
}

// WriteDOT writes the pipeline's graph as Graphviz DOT: source, stages (a shape per type),
// sinks and DLQ; branch conditions on edges; dashed edges from stages that can fail to the DLQ.
// The output is deterministic: it follows the order of the file.
func (p *Pipeline) WriteDOT(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "digraph %s {\n", dotQuote(p.Name))
	b.WriteString("  rankdir=LR;\n")
	b.WriteString("  node [fontname=\"Helvetica\", fontsize=11, style=filled, fillcolor=\"#ffffff\"];\n")
	b.WriteString("  edge [fontname=\"Helvetica\", fontsize=10];\n")
	fmt.Fprintf(b, "  %s [label=%s, shape=cylinder, fillcolor=\"#dbeafe\"];\n", dotQuote("source"),
		dotQuote("source\n"+p.Source.Impl.Label()))
	for _, st := range p.Stages {
		fmt.Fprintf(b, "  %s [label=%s, shape=%s];\n", dotQuote("stage:"+st.Name), dotQuote(st.Name+"\n"+st.Type+stageDetail(st)), shapes[st.Type])
	}
	for _, sk := range p.Sinks {
		fmt.Fprintf(b, "  %s [label=%s, shape=cylinder, fillcolor=\"#dcfce7\"];\n", dotQuote("sink:"+sk.Name), dotQuote(sk.Name+"\n"+sk.Impl.Label()))
	}
	if p.DLQ != nil {
		fmt.Fprintf(b, "  %s [label=%s, shape=cylinder, fillcolor=\"#fee2e2\"];\n", dotQuote("dlq"), dotQuote("dlq\n"+p.DLQ.Impl.Label()))
	}
	for _, e := range p.Entry {
		fmt.Fprintf(b, "  %s -> %s;\n", dotQuote("source"), dotQuote(p.nodeID(e)))
	}
	for _, st := range p.Stages {
		for _, port := range st.Ports {
			for _, t := range port.To {
				attrs := ""
				if st.Type == "branch" {
					attrs = fmt.Sprintf(" [label=%s]", dotQuote(routeLabel(port.When)))
				}
				fmt.Fprintf(b, "  %s -> %s%s;\n", dotQuote("stage:"+st.Name), dotQuote(p.nodeID(t)), attrs)
			}
		}
	}
	if p.DLQ != nil {
		for _, st := range p.Stages {
			fmt.Fprintf(b, "  %s -> %s [style=dashed, color=\"#b91c1c\"];\n", dotQuote("stage:"+st.Name), dotQuote("dlq"))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMermaid writes the same graph as a Mermaid flowchart.
func (p *Pipeline) WriteMermaid(w io.Writer) error {
	b := &strings.Builder{}
	b.WriteString("flowchart LR\n")
	ids := map[string]string{"source": "source", "dlq": "dlq"}
	id := func(name string) string {
		if v, ok := ids[name]; ok {
			return v
		}
		v := fmt.Sprintf("n%d", len(ids)-1)
		ids[name] = v
		return v
	}
	fmt.Fprintf(b, "  source[(%s)]\n", mermaidQuote("source<br/>"+p.Source.Impl.Label()))
	for _, st := range p.Stages {
		label := mermaidQuote(st.Name + "<br/>" + st.Type + strings.ReplaceAll(stageDetail(st), "\n", "<br/>"))
		open, close := "[", "]"
		switch st.Type {
		case "branch":
			open, close = "{", "}"
		case "decode":
			open, close = "[/", "/]"
		case "filter":
			open, close = "[\\", "/]"
		case "retry":
			open, close = "[[", "]]"
		}
		fmt.Fprintf(b, "  %s%s%s%s\n", id(p.nodeID(st.Name)), open, label, close)
	}
	for _, sk := range p.Sinks {
		fmt.Fprintf(b, "  %s[(%s)]\n", id(p.nodeID(sk.Name)), mermaidQuote(sk.Name+"<br/>"+sk.Impl.Label()))
	}
	if p.DLQ != nil {
		fmt.Fprintf(b, "  dlq[(%s)]\n", mermaidQuote("dlq<br/>"+p.DLQ.Impl.Label()))
	}
	for _, e := range p.Entry {
		fmt.Fprintf(b, "  source --> %s\n", id(p.nodeID(e)))
	}
	for _, st := range p.Stages {
		for _, port := range st.Ports {
			for _, t := range port.To {
				if st.Type == "branch" {
					fmt.Fprintf(b, "  %s -->|%s| %s\n", id(p.nodeID(st.Name)), mermaidQuote(routeLabel(port.When)), id(p.nodeID(t)))
				} else {
					fmt.Fprintf(b, "  %s --> %s\n", id(p.nodeID(st.Name)), id(p.nodeID(t)))
				}
			}
		}
	}
	if p.DLQ != nil {
		for _, st := range p.Stages {
			fmt.Fprintf(b, "  %s -.-> dlq\n", id(p.nodeID(st.Name)))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// nodeID names a stage or sink node; stage and sink names share one namespace.
func (p *Pipeline) nodeID(name string) string {
	if p.StageByName(name) != nil {
		return "stage:" + name
	}
	return "sink:" + name
}

// stageDetail is the second line of a stage's label: what it does, briefly.
func stageDetail(st *Stage) string {
	f := st.Fields
	switch st.Type {
	case "decode":
		return " " + f.String("format")
	case "filter":
		return "\n" + abbreviate(f.Get("when").Written()) // as written: a ${VAR} may hold a secret
	case "enrich":
		for _, src := range []string{"file", "http", "expr"} {
			if f.Has(src) {
				return " (" + src + ")"
			}
		}
	case "retry":
		inner := ""
		if n := f.Get("stage").Node; n != nil && n.Kind == yaml.MappingNode {
			for _, kv := range spec.MappingPairs(n) {
				if kv[0].Value == "type" {
					inner = kv[1].Value
				}
			}
		}
		return fmt.Sprintf(" ×%d: %s", f.Int("attempts"), inner)
	}
	if st.Workers > 1 {
		return fmt.Sprintf(" ×%d workers", st.Workers)
	}
	return ""
}

func routeLabel(when string) string {
	if when == "" {
		return "default"
	}
	return abbreviate(when)
}

func abbreviate(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return s
}

// dotQuote quotes a DOT identifier or label; newlines become centred line breaks.
func dotQuote(s string) string {
	s = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
	return `"` + s + `"`
}

// mermaidQuote quotes a Mermaid label; quotes become entities.
func mermaidQuote(s string) string {
	return `"` + strings.NewReplacer(`"`, "#quot;", "\n", "<br/>").Replace(s) + `"`
}
