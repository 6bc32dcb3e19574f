package stages_test

import (
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// Every number a stage reports is described by its type (a retry's, or the type it wraps),
// so that the metrics export it: an undescribed one would silently be left out.
func TestStagesDescribeTheirNumbers(t *testing.T) {
	p := build(t, `  - {name: d, type: decode}
  - {name: risk, type: enrich, http: {url: '"http://127.0.0.1:9/" + msg.a'}, into: risk}
  - {name: again, type: retry, stage: {type: enrich, http: {url: '"http://127.0.0.1:9/" + msg.a'}, into: again}}
`)
	described := func(t *stages.Type) map[string]bool {
		keys := map[string]bool{}
		for _, c := range t.Counters {
			keys[c.Key] = true
		}
		return keys
	}
	reg := stages.Registry()
	for _, st := range p.Stages {
		c, ok := st.Impl.(stages.Counting)
		if !ok {
			continue
		}
		keys := described(reg[st.Type])
		if st.Type == "retry" {
			for k := range described(reg["enrich"]) {
				keys[k] = true
			}
		}
		got := c.Counters()
		if len(got) == 0 {
			t.Errorf("%s reports no numbers", st.Name)
		}
		for k := range got {
			if !keys[k] {
				t.Errorf("%s (%s) reports %q, which no type describes", st.Name, st.Type, k)
			}
		}
	}
}

// What the rest of pythia-pipe asks of a stage type, every type answers: how to draw it, and
// what its numbers are called and mean.
func TestTypesSayEverything(t *testing.T) {
	metrics := map[string]string{}
	for _, typ := range stages.Types() {
		if typ.Name == "" || typ.Doc == "" || typ.Build == nil || len(typ.Fields) == 0 {
			t.Errorf("type %q lacks its name, doc, constructor or fields", typ.Name)
		}
		if l := typ.Look; l.DOTShape == "" || l.MermaidOpen == "" || l.MermaidClose == "" {
			t.Errorf("type %s has no look: %+v", typ.Name, l)
		}
		for _, c := range typ.Counters {
			if c.Key == "" || c.Help == "" {
				t.Errorf("type %s: number %+v lacks its key or help", typ.Name, c)
			}
			if c.Metric == "" {
				continue
			}
			if prev, ok := metrics[c.Metric]; ok && prev != c.Key {
				t.Errorf("metric %s exports both %q and %q", c.Metric, prev, c.Key)
			}
			metrics[c.Metric] = c.Key
		}
	}
}

// The docs' lists of types come from the registry: the `type` of every stage names every
// type, a retry's `stage` those a retry may wrap.
func TestTypeListsInDocs(t *testing.T) {
	doc := func(fields []spec.Field, name string) string {
		f, _ := spec.Lookup(fields, name)
		return f.Doc
	}
	reg := stages.Registry()
	all, wrappable := doc(stages.CommonFields, "type"), doc(reg["retry"].Fields, "stage")
	for _, typ := range stages.Types() {
		if !strings.Contains(all, typ.Name) {
			t.Errorf("the type field's doc %q does not name %s", all, typ.Name)
		}
		if strings.Contains(wrappable, typ.Name) != typ.Retryable {
			t.Errorf("retry's stage doc %q and %s's Retryable (%v) disagree", wrappable, typ.Name, typ.Retryable)
		}
	}
	if want := "The stage type: decode, filter, map, enrich, retry, branch, dedupe or aggregate."; all != want {
		t.Errorf("type doc %q, want %q", all, want)
	}
}
