package sinks_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/engine"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

const filePipeline = `version: 1
name: files
source: {type: kafka, topics: [in]}
stages:
  - {name: parse, type: decode, on_null: pass}
  - {name: big, type: filter, when: 'msg == nil || msg.n > 1'}
sinks:
  - {name: out, type: file, path: out.jsonl}
dlq: {type: file, path: dlq.jsonl}
`

// A pipeline writes its sink and its DLQ to files, one JSON line per record; each record is
// done once its line is written and synced.
func TestFileSink(t *testing.T) {
	dir := t.TempDir()
	p, diags := pipeline.Parse("files.yaml", []byte(filePipeline), pipeline.Options{Env: func(string) (string, bool) { return "", false }, BaseDir: dir})
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	recs := []*record.Record{
		{Key: []byte("a"), Value: []byte(`{"n": 9007199254740993}`), Timestamp: at, Headers: []record.Header{{Key: "h", Value: []byte("v")}}},
		{Key: []byte("b"), Value: []byte(`{"n": 1}`), Timestamp: at},  // filtered
		{Key: []byte("c"), Value: []byte(`not json`), Timestamp: at},  // to the DLQ
		{Key: []byte("d"), Value: nil, Timestamp: at},                 // a tombstone
		{Key: []byte{0xff}, Value: []byte(`{"n": 2}`), Timestamp: at}, // a key that is not UTF-8
	}
	open := func(name string, sk sinks.Compiled, report sinks.Report) (sinks.Sink, error) {
		return sk.Open(sinks.Env{Name: name, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, report)
	}
	e, err := engine.NewEngine(p, open, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	src := &engine.MemorySource{Records: recs}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Run(ctx, src, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, twice := src.Settled(); n != len(recs) || twice {
		t.Fatalf("settled %d of %d (twice %v)", n, len(recs), twice)
	}
	out := readLines(t, filepath.Join(dir, "out.jsonl"))
	want := []string{
		`{"key":"a","value":{"n":9007199254740993},"headers":{"h":"v"},"timestamp":"2026-11-26T10:00:00Z"}`,
		`{"key":"d","value":null,"timestamp":"2026-11-26T10:00:00Z"}`,
		`{"key":null,"key_base64":"/w==","value":{"n":2},"timestamp":"2026-11-26T10:00:00Z"}`,
	}
	if strings.Join(out, "\n") != strings.Join(want, "\n") {
		t.Errorf("out.jsonl:\n%s\nwant:\n%s", strings.Join(out, "\n"), strings.Join(want, "\n"))
	}
	dead := readLines(t, filepath.Join(dir, "dlq.jsonl"))
	var d struct {
		Key     string
		Value   string
		Headers map[string]string
	}
	if len(dead) != 1 || json.Unmarshal([]byte(dead[0]), &d) != nil || d.Key != "c" || d.Value != "not json" || d.Headers[dlq.HeaderStage] != "parse" {
		t.Errorf("dlq.jsonl: %q", dead)
	}
}

// A file sink's folder must exist when the pipeline is validated.
func TestFileSinkFolder(t *testing.T) {
	src := strings.Replace(filePipeline, "path: out.jsonl", "path: nowhere/out.jsonl", 1)
	_, diags := pipeline.Parse("files.yaml", []byte(src), pipeline.Options{Env: func(string) (string, bool) { return "", false }, BaseDir: t.TempDir()})
	if len(diags) != 1 || !strings.Contains(diags[0].Msg, `the folder of "nowhere/out.jsonl" does not exist`) || diags[0].Path != "sinks[0].path" {
		t.Fatalf("got %v", diags.Err())
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
