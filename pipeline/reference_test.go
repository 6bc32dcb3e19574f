package pipeline

import (
	"bytes"
	"encoding/json"
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

// docs/reference.md is generated from the specs; it must match them.
func TestReferenceDocsUpToDate(t *testing.T) {
	var got bytes.Buffer
	WriteReference(&got)
	checkGolden(t, "docs/reference.md", got.Bytes())
	for _, name := range append(append(stages.TypeNames(), sinks.TypeNames()...), sources.TypeNames()...) {
		if !bytes.Contains(got.Bytes(), []byte("### `"+name+"`")) {
			t.Errorf("reference lacks type %s", name)
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
