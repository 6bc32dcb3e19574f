package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// docs --dir writes every generated page, and removes pages of types that are gone.
func TestDocsDir(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "reference", "stages", "gone.md")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"docs", "--dir", dir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	files := pipeline.ReferenceFiles()
	for rel, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the specs make", rel)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the page of a type that is gone was kept: %v", err)
	}
	if !strings.Contains(stdout.String(), "wrote ") {
		t.Errorf("stdout: %q", stdout.String())
	}
}
