package pipeline

import (
	"fmt"
	"io"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// WriteDOT writes the pipeline's graph as Graphviz DOT: source, stages (a shape per type),
// sinks and DLQ; branch conditions on edges; dashed edges from stages that can fail to the DLQ;
// a stateful stage's store, dotted to its stage, and the changelog topic it is backed by,
// dashed. The output is deterministic: it follows the order of the file.
func (p *Pipeline) WriteDOT(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "digraph %s {\n", dotQuote(p.Name))
	b.WriteString("  rankdir=LR;\n")
	b.WriteString("  node [fontname=\"Helvetica\", fontsize=11, style=filled, fillcolor=\"#ffffff\"];\n")
	b.WriteString("  edge [fontname=\"Helvetica\", fontsize=10];\n")
	fmt.Fprintf(b, "  %s [label=%s, shape=cylinder, fillcolor=\"#dbeafe\"];\n", dotQuote("source"),
		dotQuote("source\n"+p.Source.Impl.Label()))
	for _, st := range p.Stages {
		fmt.Fprintf(b, "  %s [label=%s, shape=%s];\n", dotQuote("stage:"+st.Name), dotQuote(st.Name+"\n"+st.Type+stageDetail(st)), typeOf(st).Look.DOTShape)
	}
	for _, sk := range p.Sinks {
		fmt.Fprintf(b, "  %s [label=%s, shape=cylinder, fillcolor=\"#dcfce7\"];\n", dotQuote("sink:"+sk.Name), dotQuote(sk.Name+"\n"+sk.Impl.Label()))
	}
	if p.DLQ != nil {
		fmt.Fprintf(b, "  %s [label=%s, shape=cylinder, fillcolor=\"#fee2e2\"];\n", dotQuote("dlq"), dotQuote("dlq\n"+p.DLQ.Impl.Label()))
	}
	for _, st := range p.Stateful() {
		fmt.Fprintf(b, "  %s [label=%s, shape=cylinder, style=\"filled,dashed\", fillcolor=\"#fef9c3\"];\n", dotQuote("store:"+st.Name), dotQuote(storeLabel(st)))
		fmt.Fprintf(b, "  %s [label=%s, shape=cylinder, fillcolor=\"#fef9c3\"];\n", dotQuote("changelog:"+st.Name), dotQuote(changelogLabel(p, st)))
	}
	for _, st := range p.Stateful() {
		if r := p.Repartition(st); r != "" {
			fmt.Fprintf(b, "  %s [label=%s, shape=cylinder, fillcolor=\"#fef9c3\"];\n", dotQuote("repartition:"+st.Name), dotQuote(repartitionLabel(st, r)))
			fmt.Fprintf(b, "  %s -> %s;\n", dotQuote("repartition:"+st.Name), dotQuote("stage:"+st.Name))
		}
	}
	for _, e := range p.Entry {
		fmt.Fprintf(b, "  %s -> %s;\n", dotQuote("source"), dotQuote(p.into(e)))
	}
	for _, st := range p.Stages {
		for _, port := range st.Ports {
			for _, t := range port.To {
				attrs := ""
				if typeOf(st).Routes != nil {
					attrs = fmt.Sprintf(" [label=%s]", dotQuote(routeLabel(port.When)))
				}
				fmt.Fprintf(b, "  %s -> %s%s;\n", dotQuote("stage:"+st.Name), dotQuote(p.into(t)), attrs)
			}
		}
	}
	if p.DLQ != nil {
		for _, st := range p.Stages {
			fmt.Fprintf(b, "  %s -> %s [style=dashed, color=\"#b91c1c\"];\n", dotQuote("stage:"+st.Name), dotQuote("dlq"))
		}
	}
	for _, st := range p.Stateful() {
		fmt.Fprintf(b, "  %s -> %s [style=dotted, arrowhead=none];\n", dotQuote("stage:"+st.Name), dotQuote("store:"+st.Name))
		fmt.Fprintf(b, "  %s -> %s [style=dashed, label=\"changes\"];\n", dotQuote("store:"+st.Name), dotQuote("changelog:"+st.Name))
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
		open, close := "[", "]" // a plain box unless the type says otherwise
		if l := typeOf(st).Look; l.MermaidOpen != "" {
			open, close = l.MermaidOpen, l.MermaidClose
		}
		fmt.Fprintf(b, "  %s%s%s%s\n", id(p.nodeID(st.Name)), open, label, close)
	}
	for _, sk := range p.Sinks {
		fmt.Fprintf(b, "  %s[(%s)]\n", id(p.nodeID(sk.Name)), mermaidQuote(sk.Name+"<br/>"+sk.Impl.Label()))
	}
	if p.DLQ != nil {
		fmt.Fprintf(b, "  dlq[(%s)]\n", mermaidQuote("dlq<br/>"+p.DLQ.Impl.Label()))
	}
	for _, st := range p.Stateful() {
		fmt.Fprintf(b, "  %s[(%s)]\n", id("store:"+st.Name), mermaidQuote(storeLabel(st)))
		fmt.Fprintf(b, "  %s[(%s)]\n", id("changelog:"+st.Name), mermaidQuote(changelogLabel(p, st)))
	}
	for _, st := range p.Stateful() {
		if r := p.Repartition(st); r != "" {
			fmt.Fprintf(b, "  %s[(%s)]\n", id("repartition:"+st.Name), mermaidQuote(strings.ReplaceAll(repartitionLabel(st, r), "\n", "<br/>")))
			fmt.Fprintf(b, "  %s --> %s\n", id("repartition:"+st.Name), id(p.nodeID(st.Name)))
		}
	}
	for _, e := range p.Entry {
		fmt.Fprintf(b, "  source --> %s\n", id(p.into(e)))
	}
	for _, st := range p.Stages {
		for _, port := range st.Ports {
			for _, t := range port.To {
				if typeOf(st).Routes != nil {
					fmt.Fprintf(b, "  %s -->|%s| %s\n", id(p.nodeID(st.Name)), mermaidQuote(routeLabel(port.When)), id(p.into(t)))
				} else {
					fmt.Fprintf(b, "  %s --> %s\n", id(p.nodeID(st.Name)), id(p.into(t)))
				}
			}
		}
	}
	if p.DLQ != nil {
		for _, st := range p.Stages {
			fmt.Fprintf(b, "  %s -.-> dlq\n", id(p.nodeID(st.Name)))
		}
	}
	for _, st := range p.Stateful() {
		fmt.Fprintf(b, "  %s -.- %s\n", id(p.nodeID(st.Name)), id("store:"+st.Name))
		fmt.Fprintf(b, "  %s -.->|%s| %s\n", id("store:"+st.Name), mermaidQuote("changes"), id("changelog:"+st.Name))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// storeLabel is the label of a stateful stage's store: a store per input partition.
func storeLabel(st *Stage) string { return "store: " + st.Name + "\nper input partition" }

// changelogLabel is the label of a stateful stage's changelog topic, the store's backup.
func changelogLabel(p *Pipeline, st *Stage) string {
	return "changelog\nkafka: " + p.Changelog(st.Name)
}

// nodeID names a stage or sink node; stage and sink names share one namespace.
// into is the node an edge to name draws to: a stage repartitioned is reached through its
// repartition topic.
func (p *Pipeline) into(name string) string {
	if st := p.StageByName(name); st != nil && p.Repartition(st) != "" {
		return "repartition:" + name
	}
	return p.nodeID(name)
}

// repartitionLabel is the label of a stage's repartition topic: by what, and which topic.
func repartitionLabel(st *Stage, topic string) string {
	return "repartition by " + diag.Abbreviate(st.Impl.(stages.Stateful).StateKey().Written(), 40) + "\nkafka: " + topic
}

func (p *Pipeline) nodeID(name string) string {
	if p.StageByName(name) != nil {
		return "stage:" + name
	}
	return "sink:" + name
}

// typeOf is the type of a stage, which says how to draw it; a zero Type for a type unknown
// (in a pipeline a test made by hand: a loaded one knows all its types).
func typeOf(st *Stage) *stages.Type {
	if t := stages.Registry()[st.Type]; t != nil {
		return t
	}
	return &stages.Type{}
}

// stageDetail is what follows the type on a stage's label: what it does, briefly, as its
// type sums it up, else its workers.
func stageDetail(st *Stage) string {
	if detail := typeOf(st).Look.Detail; detail != nil {
		suffix, line := detail(st.Fields)
		if line != "" {
			suffix += "\n" + diag.Abbreviate(line, 40)
		}
		if suffix != "" {
			return suffix
		}
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
	return diag.Abbreviate(when, 40)
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
