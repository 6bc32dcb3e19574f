package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/internal/doccheck"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/pipetest"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// repo is the repository root.
const repo = ".."

// minimal completes an example: each top-level key it leaves out is taken from here.
var minimal = []struct{ key, yaml string }{
	{"version", "version: 1"},
	{"name", "name: example"},
	{"kafka", "kafka: {brokers: localhost:9092}"},
	{"source", "source: {type: kafka, topics: [in]}"},
	{"sinks", "sinks: [{name: out, type: kafka, topic: out}]"},
	{"dlq", "dlq: {type: kafka, topic: dlq}"},
}

// docsEnv is the environment the examples are validated with.
func docsEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"KAFKA_USER": "alice", "KAFKA_PASSWORD": "s3cret-pw", "SR_USER": "sr", "SR_PASSWORD": "sr-pw",
		"SR_TOKEN": "token", "POD_NAME": "pipe-0", "RISK_URL": "http://risk:8080",
	}[name]
	return v, ok
}

// complete is a whole pipeline file from an example: the example as written, after the
// minimal pipeline's keys it does not have. An example with `version` is whole already.
func complete(example string) string {
	top := map[string]bool{}
	for _, m := range topKey.FindAllStringSubmatch(example, -1) {
		top[m[1]] = true
	}
	if top["version"] {
		return example
	}
	var b strings.Builder
	for _, m := range minimal {
		if !top[m.key] {
			b.WriteString(m.yaml + "\n")
		}
	}
	return b.String() + example
}

// topKey is a top-level key of a YAML mapping written in block style.
var topKey = regexp.MustCompile(`(?m)^([a-z_]+):`)

// exampleDir is where examples' relative files resolve: pipelines/'s data and schemas, and
// the test certificates under the names the docs give them.
func exampleDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"data": "pipelines/data", "schemas": "pipelines/schemas",
		"ca.pem": "testdata/tls/ca.pem", "client.pem": "testdata/tls/client.pem", "client.key": "testdata/tls/client.key",
	} {
		if err := os.Symlink(filepath.Join(abs, target), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// validate validates an example, completed, as file.
func validate(file, example, dir string) error {
	src := complete(example)
	_, diags := pipeline.Parse(file, []byte(src), pipeline.Options{Env: docsEnv, BaseDir: dir})
	if len(diags) > 0 {
		return fmt.Errorf("%v\n--- as validated:\n%s", diags.Err(), src)
	}
	return nil
}

// Every type's examples, printed on its reference page, validate without a warning.
func TestTypeExamplesValidate(t *testing.T) {
	type typed struct {
		name     string
		examples []spec.Example
	}
	var all []typed
	for _, name := range stages.TypeNames() {
		all = append(all, typed{"stages/" + name, stages.Registry()[name].Examples})
	}
	for _, name := range sinks.TypeNames() {
		all = append(all, typed{"sinks/" + name, sinks.Registry()[name].Examples})
	}
	for _, name := range sources.TypeNames() {
		all = append(all, typed{"sources/" + name, sources.Registry()[name].Examples})
	}
	dir := exampleDir(t)
	for _, ty := range all {
		t.Run(ty.name, func(t *testing.T) {
			if len(ty.examples) == 0 {
				t.Fatal("no example: add one to the type's Examples")
			}
			for _, e := range ty.examples {
				if err := validate(ty.name+".yaml", e.YAML, dir); err != nil {
					t.Errorf("example %q: %v", e.Title, err)
				}
			}
		})
	}
}

// A fenced block of a Markdown file.
type block struct {
	file, info, text string
	line             int
}

// yamlBlocks lists the ```yaml blocks of a Markdown file; info is what follows "yaml".
func yamlBlocks(t *testing.T, rel string) []block {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repo, rel))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []block
	var cur *block
	var fence, margin string // a block in a list item is indented as its fence is
	for i, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && fence == "" && strings.HasPrefix(trimmed, "```"):
			fence = trimmed[:strings.LastIndex(trimmed, "`")+1]
			margin = line[:len(line)-len(strings.TrimLeft(line, " "))]
			if lang, ok := strings.CutPrefix(trimmed, "```yaml"); ok && (lang == "" || lang[0] == ' ') {
				cur = &block{file: rel, info: strings.TrimSpace(lang), line: i + 1}
			}
		case fence != "" && trimmed == fence:
			if cur != nil {
				blocks = append(blocks, *cur)
			}
			cur, fence = nil, ""
		case cur != nil:
			cur.text += strings.TrimPrefix(line, margin) + "\n"
		}
	}
	return blocks
}

// markdownFiles lists README.md and every Markdown file under docs/.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	docs, err := doccheck.DocsMarkdown(repo)
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md"}, docs...)
}

// Every YAML example of README.md and docs/ is valid. A block is a pipeline file (with
// `version`), a part of one (completed by a minimal pipeline, as the reference's examples
// are) or a test file (with `cases`, run against its `pipeline:` or the pipeline its fence
// names: ```yaml test=pipelines/orders.yaml). The fence says what else a block is meant to be:
// ```yaml partial (a fragment to read, not checked) or ```yaml invalid (must not validate).
func TestDocExamplesValidate(t *testing.T) {
	dir := exampleDir(t)
	checked := 0
	for _, rel := range markdownFiles(t) {
		for _, b := range yamlBlocks(t, rel) {
			name := fmt.Sprintf("%s:%d", b.file, b.line)
			switch info := b.info; {
			case info == "partial":
			case info == "invalid":
				if validate(name, b.text, dir) == nil {
					t.Errorf("%s: marked invalid, but validates", name)
				}
			case strings.HasPrefix(info, "test="):
				checkTestFile(t, name, b.text, strings.TrimPrefix(info, "test="))
			case info != "":
				t.Errorf("%s: unknown marker %q (partial, invalid or test=PIPELINE)", name, info)
			case strings.Contains("\n"+b.text, "\ncases:"):
				checkTestFile(t, name, b.text, "")
			default:
				if err := validate(name, b.text, dir); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("only %d YAML examples found in README.md and docs/", checked)
	}
}

// checkTestFile runs a test file of the docs against its pipeline: every case passes.
func checkTestFile(t *testing.T, name, text, pipelineRel string) {
	t.Helper()
	dir := t.TempDir()
	if pipelineRel != "" {
		abs, err := filepath.Abs(filepath.Join(repo, pipelineRel))
		if err != nil {
			t.Fatal(err)
		}
		text = "pipeline: " + abs + "\n" + text
	}
	path := filepath.Join(dir, "example.test.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := pipetest.Load(path)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	results, err := pipetest.Run(context.Background(), f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	for _, r := range results {
		if len(r.Failures) > 0 {
			t.Errorf("%s: case %q fails: %s", name, r.Case.Name, strings.Join(r.Failures, "; "))
		}
	}
}
