package spec

import (
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

// Get on a name the object's spec does not have fails loudly, naming the field and the spec's
// fields: such a name is a mistake in the code, which must not read as a field left out.
// Lookup answers the same question without failing, for code reading a field some specs lack.
func TestGetUnknownFieldPanics(t *testing.T) {
	fields := []Field{String("topic", ""), Object("create", "", Int("partitions", "").WithDefault("1")), Object("tls", "", String("ca_file", "")).Require()}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("topic: t"), &doc); err != nil {
		t.Fatal(err)
	}
	p := &Parser{File: "t.yaml", Diags: &diag.List{}}
	obj := p.ParseObject(doc.Content[0], fields, "sink", diag.Pos{File: "t.yaml", Line: 1, Col: 1})
	mustPanic := func(what, want string, read func()) {
		t.Helper()
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), want) {
				t.Errorf("%s: panicked with %v, want %q", what, r, want)
			}
		}()
		read()
	}
	mustPanic("a typo", `spec: sink has no field "topc" (its fields: topic, create, tls); a programming error`, func() { obj.Get("topc") })
	mustPanic("through an accessor", `no field "partition"`, func() { obj.Get("create").Int("partition") })
	mustPanic("in an absent object", `sink.tls has no field "ca"`, func() { obj.Get("tls").String("ca") })
	if obj.String("topic") != "t" || obj.Get("create").Int("partitions") != 1 || obj.Has("tls") || obj.Get("tls").Has("ca_file") {
		t.Error("known fields read wrong")
	}
	if v, ok := obj.Lookup("routes"); ok || v.Set || v.Path != "sink.routes" {
		t.Errorf("Lookup of a name the spec lacks: %+v, %v", v, ok)
	}
	if v, ok := obj.Lookup("topic"); !ok || v.Str != "t" {
		t.Errorf("Lookup of a known field: %+v, %v", v, ok)
	}
	// A Value made by hand has no spec to check against: its absent fields read as empty.
	if (&Value{}).Get("anything").Set {
		t.Error("a hand-made Value has a field")
	}
}
