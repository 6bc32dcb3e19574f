package pipeline

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

// FuzzParse feeds arbitrary bytes to the loader and validator. Whatever the input, Parse must
// not panic, must return either a pipeline or diagnostics, and every diagnostic must point
// into the file. Its seed corpus (every pipeline in the repository) runs with `go test`.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"pipelines/*.yaml", "testdata/good/*.yaml", "testdata/bad/*.yaml"} {
		files, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Add([]byte("a: ${"))
	f.Add([]byte("a: {b: ${X}, c: [$${, ${Y:-d}, '${Z'}]}\n${K}: |\n  ${V}\n"))
	f.Add([]byte("- - - [{]}"))
	f.Add([]byte("version: 1\nname: x\nsource: {type: kafka, topics: a}\nsinks: [{name: s, type: kafka, topic: t}]\nstages: [{name: r, type: retry, stage: {type: retry}}]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		p, diags := Parse("fuzz.yaml", src, Options{Env: testEnv, BaseDir: dir})
		if (p == nil) == (len(diags) == 0) {
			t.Fatalf("want a pipeline or diagnostics, got pipeline=%v diags=%d", p != nil, len(diags))
		}
		lines := len(diag.Lines(src))
		for _, d := range diags {
			if d.Pos.File != "fuzz.yaml" || d.Pos.Line < 0 || d.Pos.Line > lines || (d.Pos.Line > 0 && d.Pos.Col < 1) {
				t.Fatalf("diagnostic outside the file (%d lines): %v", lines, d)
			}
		}
		if p != nil {
			var out bytes.Buffer
			if err := p.WriteDOT(&out); err != nil {
				t.Fatal(err)
			}
			if err := p.WriteMermaid(&out); err != nil {
				t.Fatal(err)
			}
		}
	})
}
