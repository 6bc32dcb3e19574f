package pipeline

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// Every default in every spec parses against its own field.
func TestAllDefaultsParse(t *testing.T) {
	all := append([]spec.Field(nil), FileFields...)
	all = append(all, stages.CommonFields...)
	all = append(all, sinks.CommonFields...)
	for _, typ := range stages.Registry() {
		all = append(all, typ.Fields...)
	}
	for _, typ := range sinks.Registry() {
		all = append(all, typ.Fields...)
		all = append(all, typ.DLQFields...)
	}
	for _, typ := range sources.Registry() {
		all = append(all, typ.Fields...)
	}
	if err := spec.CheckDefaults(all); err != nil {
		t.Fatal(err)
	}
}

// docs/reference.md and docs/reference/ are generated from the specs (make docs); they must
// match them, and hold no page the specs no longer make.
func TestReferenceDocsUpToDate(t *testing.T) {
	files := ReferenceFiles()
	for rel, got := range files {
		want, err := os.ReadFile(filepath.Join(root, "docs", rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("docs/%s is stale or missing: run make docs (%v)", rel, err)
		}
	}
	err := filepath.WalkDir(filepath.Join(root, "docs", "reference"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(root, "docs"), path)
		if _, ok := files[filepath.ToSlash(rel)]; !ok {
			t.Errorf("docs/%s is not generated from the specs: run make docs", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(append(stages.TypeNames(), sinks.TypeNames()...), sources.TypeNames()...) {
		if !bytes.Contains(files["reference.md"], []byte("### `"+name+"`")) {
			t.Errorf("reference lacks type %s", name)
		}
	}
	for _, kind := range []string{"stages", "sinks", "sources"} {
		if !bytes.Contains(files["reference/index.md"], []byte("## "+kindTitle[kind])) {
			t.Errorf("the index lacks the %s", kind)
		}
	}
}

func TestJSONSchema(t *testing.T) {
	s := JSONSchema()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	props := back["properties"].(map[string]any)
	for _, key := range []string{"version", "name", "kafka", "source", "stages", "sinks", "dlq"} {
		if props[key] == nil {
			t.Errorf("schema lacks %s", key)
		}
	}
	variants := props["stages"].(map[string]any)["items"].(map[string]any)["oneOf"].([]any)
	if len(variants) != len(stages.Registry()) {
		t.Errorf("%d stage variants, want %d", len(variants), len(stages.Registry()))
	}
	if sv := props["sinks"].(map[string]any)["items"].(map[string]any)["oneOf"].([]any); len(sv) != len(sinks.Registry()) {
		t.Errorf("%d sink variants, want %d", len(sv), len(sinks.Registry()))
	}
}
