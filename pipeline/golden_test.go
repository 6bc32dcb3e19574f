package pipeline

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// root is the repository root, where testdata/ and pipelines/ are.
const root = ".."

// testEnv is the environment every golden test sees, whatever the machine's.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{"KAFKA_USER": "alice", "KAFKA_PASSWORD": "s3cret-pw"}[name]
	return v, ok
}

// parseFile parses a file under root, naming it in diagnostics by its path from root.
func parseFile(t testing.TB, rel string) (*Pipeline, diag.List, []byte) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	p, diags := Parse(rel, src, Options{Env: testEnv, BaseDir: filepath.Join(root, filepath.Dir(rel))})
	return p, diags, src
}

func checkGolden(t *testing.T, goldenRel string, got []byte) {
	t.Helper()
	path := filepath.Join(root, goldenRel)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pipeline -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s\n--- got\n%s\n--- want\n%s", goldenRel, got, want)
	}
}

func list(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s", pattern)
	}
	var pipelines []string
	for _, f := range files {
		if strings.HasSuffix(f, ".test.yaml") {
			continue // a pipeline's tests (pythia-pipe test), not a pipeline
		}
		rel, _ := filepath.Rel(root, f)
		pipelines = append(pipelines, rel)
	}
	return pipelines
}

// Every bad pipeline produces exactly the diagnostics of its golden file; each holds one
// mistake and so one error, except the file made to show that all mistakes are reported.
func TestBadPipelinesGolden(t *testing.T) {
	files := list(t, "testdata/bad/*.yaml")
	if len(files) < 25 {
		t.Fatalf("only %d bad pipelines, want at least 25", len(files))
	}
	for _, rel := range files {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			p, diags, src := parseFile(t, rel)
			if p != nil || len(diags) == 0 {
				t.Fatalf("pipeline is valid, want diagnostics")
			}
			want := 1
			if strings.Contains(rel, "several-mistakes") {
				want = 3
			}
			if diags.Errors() != want { // and the warnings that may tell why
				t.Errorf("got %d errors, want %d:\n%v", diags.Errors(), want, diags.Err())
			}
			var out bytes.Buffer
			diag.Print(&out, diags, diag.Sources{rel: src})
			checkGolden(t, strings.TrimSuffix(rel, ".yaml")+".golden", out.Bytes())
		})
	}
}

func TestGoodPipelinesValidate(t *testing.T) {
	files := append(list(t, "pipelines/*.yaml"), list(t, "testdata/good/*.yaml")...)
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			p, diags, _ := parseFile(t, rel)
			if len(diags) > 0 || p == nil {
				t.Fatalf("want valid, got:\n%v", diags.Err())
			}
			if len(p.Warnings) > 0 {
				t.Fatalf("want no warnings, got:\n%v", p.Warnings.Err())
			}
		})
	}
}

// Every file in testdata/warn is valid, with exactly the one warning of its golden file.
func TestWarningsGolden(t *testing.T) {
	for _, rel := range list(t, "testdata/warn/*.yaml") {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			p, diags, src := parseFile(t, rel)
			if p == nil {
				t.Fatalf("want valid, got:\n%v", diags.Err())
			}
			if len(p.Warnings) != 1 || !p.Warnings[0].Warning {
				t.Fatalf("want one warning, got:\n%v", p.Warnings.Err())
			}
			var out bytes.Buffer
			diag.Print(&out, p.Warnings, diag.Sources{rel: src})
			checkGolden(t, strings.TrimSuffix(rel, ".yaml")+".golden", out.Bytes())
		})
	}
}

// The orders example must keep the meaning DESIGN.md gives it.
func TestOrdersExampleShape(t *testing.T) {
	p, diags, _ := parseFile(t, "pipelines/orders.yaml")
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	if p.Name != "orders" || p.KafkaSource().Group != "order-processors" || p.KafkaSource().Start != "earliest" || namedTopic(p.DLQ) != "orders-dlq" {
		t.Errorf("unexpected pipeline header: %+v %+v", p.Source, p.DLQ)
	}
	var names []string
	for _, s := range p.Stages {
		names = append(names, s.Name+":"+s.Type)
	}
	if got := strings.Join(names, " "); got != "parse:decode valid:filter shape:map route:branch" {
		t.Errorf("stages = %s", got)
	}
	route := p.StageByName("route")
	if len(route.Ports) != 2 || route.Ports[0].To[0] != "big" || route.Ports[1].When != "" || route.Ports[1].To[0] != "out" {
		t.Errorf("route ports = %+v", route.Ports)
	}
	if got := p.StageByName("route").In.Fields["total_cents"]; got == nil || got.Kind.String() != "float" {
		t.Errorf("total_cents should reach the branch as a float, got %v", got)
	}
}

func TestGraphGolden(t *testing.T) {
	for _, rel := range list(t, "pipelines/*.yaml") {
		name := strings.TrimSuffix(filepath.Base(rel), ".yaml")
		p, diags, _ := parseFile(t, rel)
		if len(diags) > 0 {
			t.Fatal(diags.Err())
		}
		t.Run(name+".dot", func(t *testing.T) {
			var out bytes.Buffer
			if err := p.WriteDOT(&out); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "testdata/graph/"+name+".dot", out.Bytes())
		})
		t.Run(name+".mmd", func(t *testing.T) {
			var out bytes.Buffer
			if err := p.WriteMermaid(&out); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "testdata/graph/"+name+".mmd", out.Bytes())
		})
	}
}

// Graphviz must render every example without a warning. Graphviz is a test dependency
// (installed by .ci/run); without it this test fails rather than pass unchecked.
func TestGraphRendersWithGraphviz(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Fatal("Graphviz's dot is needed by this test: apt-get install graphviz")
	}
	for _, rel := range list(t, "pipelines/*.yaml") {
		p, diags, _ := parseFile(t, rel)
		if len(diags) > 0 {
			t.Fatal(diags.Err())
		}
		var in, out, stderr bytes.Buffer
		if err := p.WriteDOT(&in); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(dot, "-Tsvg")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = &in, &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: dot failed: %v\n%s", rel, err, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Errorf("%s: dot warned:\n%s", rel, stderr.String())
		}
		if !bytes.Contains(out.Bytes(), []byte("<svg")) {
			t.Errorf("%s: dot produced no SVG", rel)
		}
	}
}

// Graph output is deterministic: the same file draws the same bytes every time.
func TestGraphDeterministic(t *testing.T) {
	var first []byte
	for i := 0; i < 20; i++ {
		p, _, _ := parseFile(t, "pipelines/payments.yaml")
		var out bytes.Buffer
		_ = p.WriteDOT(&out)
		_ = p.WriteMermaid(&out)
		if i == 0 {
			first = out.Bytes()
		} else if !bytes.Equal(first, out.Bytes()) {
			t.Fatal("graph output changed between runs")
		}
	}
}

// Secrets given through the environment never show in the graph.
func TestGraphHasNoSecrets(t *testing.T) {
	p, diags, _ := parseFile(t, "testdata/good/secure.yaml")
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	var out bytes.Buffer
	_ = p.WriteDOT(&out)
	_ = p.WriteMermaid(&out)
	if bytes.Contains(out.Bytes(), []byte("s3cret-pw")) {
		t.Error("the SASL password appears in the graph")
	}
}

// producer is the producer settings of the Kafka sink s built.
func producer(s *Sink) sinks.Producer { return s.Impl.(sinks.Transactional).ProducerSettings() }

// namedTopic is the topic the Kafka sink s built names, "" when it computes its topics.
func namedTopic(s *Sink) string {
	if topics := s.Impl.(sinks.TopicWriter).Topics(); len(topics) == 1 {
		return topics[0].Name
	}
	return ""
}

// allowed are the names and patterns of the topic_allow of the Kafka sink s built.
func allowed(s *Sink) []string {
	names, patterns := s.Impl.(sinks.TopicWriter).Computed()
	for _, n := range names {
		patterns = append(patterns, n.Name)
	}
	return patterns
}
