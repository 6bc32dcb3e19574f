package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

const (
	warnFile    = "../../testdata/warn/02-paths-join.yaml"
	severalBad  = "../../testdata/bad/39-several-mistakes.yaml"
	clickstream = "../../pipelines/clickstream.yaml"
)

// runValidate runs validate with in as its standard input.
func runValidate(t *testing.T, args []string, in string) (code int, stdout, stderr string) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(in)
	t.Cleanup(func() { stdin = old })
	var out, errs bytes.Buffer
	code = run(append([]string{"validate"}, args...), &out, &errs)
	return code, out.String(), errs.String()
}

// clickstreamFromHere is the clickstream example with its table named from this folder, as a
// pipeline read from the standard input names it.
func clickstreamFromHere(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(clickstream)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte("path: data/countries.csv")) {
		t.Fatal("the clickstream example no longer reads data/countries.csv")
	}
	return strings.Replace(string(src), "path: data/countries.csv", "path: ../../pipelines/data/countries.csv", 1)
}

func TestValidateText(t *testing.T) {
	cases := []struct {
		name           string
		args           []string
		stdin          string
		code           int
		stdout, stderr []string // fragments expected on each
		notOnStdout    string
	}{
		{"a warning does not fail a file", []string{warnFile}, "", exitOK,
			[]string{"02-paths-join.yaml: ok, with 1 warning(s)\n"},
			[]string{`02-paths-join.yaml:19:9: stages[2].to: warning: "out" is also reached from "route"`, " 19 |     to: out\n    |         ^"}, ""},
		{"strict: a warning fails the file", []string{"--strict", warnFile}, "", exitInvalid,
			nil, []string{"02-paths-join.yaml:19:9: stages[2].to: warning:", "02-paths-join.yaml: 1 warning(s), which --strict counts as errors\n"}, "ok"},
		{"strict after the file", []string{warnFile, "--strict"}, "", exitInvalid,
			nil, []string{"which --strict counts as errors"}, "ok"},
		{"strict passes a file without warnings", []string{"--strict", "../../pipelines/orders.yaml", "../../pipelines/orders.test.yaml"}, "", exitOK,
			[]string{"orders.yaml: ok\n", "orders.test.yaml: ok (5 test case(s)"}, nil, ""},
		{"strict: an invalid file is still invalid, an unreadable one still 2", []string{"--strict", warnFile, severalBad, "nope.yaml"}, "", exitUsage,
			nil, []string{"39-several-mistakes.yaml: 3 errors", "pythia-pipe: open nope.yaml: no such file or directory"}, ""},
		{"stdin: valid, relative files from the current folder", []string{"-"}, clickstreamFromHere(t), exitOK,
			[]string{"<stdin>: ok\n"}, nil, ""},
		{"stdin: invalid, named <stdin>", []string{"-"}, "version: 1\nname: x\nsource: {type: kafka, topics: [a]}\nstages: []\nsinks:\n  - {name: out, type: kafka, topic: b, acks: some}\n", exitInvalid,
			nil, []string{`<stdin>:6:46: sinks[0].acks: "some" is not one of all, leader, none`, " 6 |   - {name: out, type: kafka, topic: b, acks: some}\n", "<stdin>: 1 error"}, "ok"},
		{"stdin: a table named from the pipeline's folder is not found from here", []string{"-"}, mustRead(t, clickstream), exitInvalid,
			nil, []string{`<stdin>:43:13: stages[3].file.path: file "data/countries.csv" does not exist`}, "ok"},
		{"stdin beside files", []string{"../../pipelines/orders.yaml", "-"}, "", exitInvalid,
			[]string{"orders.yaml: ok\n"}, []string{"<stdin>:1:1: the file is empty"}, ""},
		{"stdin twice", []string{"-", "-"}, "", exitUsage, nil, []string{"- (the standard input) can be read once"}, ""},
		{"a format that is not one", []string{"--format", "yaml", warnFile}, "", exitUsage, nil, []string{"usage: pythia-pipe validate [--strict] [--format text|json] FILE|DIR..."}, ""},
		{"help lists the flags", []string{"--help"}, "", exitOK, nil, []string{"usage: pythia-pipe validate", "-strict", "warnings count as errors", "-format FORMAT", `(default "text")`}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runValidate(t, c.args, c.stdin)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, stdout, stderr)
			}
			for _, want := range c.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			for _, want := range c.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if c.notOnStdout != "" && strings.Contains(stdout, c.notOnStdout) {
				t.Errorf("stdout has %q:\n%s", c.notOnStdout, stdout)
			}
		})
	}
}

func mustRead(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// want is a diagnostic expected in a report: all but the message, of which a part.
type want struct {
	severity, file string
	line, col      int
	path, message  string
}

// wantFile is a file expected in a report.
type wantFile struct {
	file     string
	ok       bool
	pipeline string
	cases    int
	diags    []want
}

// testFile writes a test file of pipeline into a folder of its own.
func testFile(t *testing.T, pipeline, cases string) string {
	t.Helper()
	abs, err := filepath.Abs(pipeline)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.test.yaml")
	if err := os.WriteFile(path, []byte("pipeline: "+abs+"\ncases:\n"+cases), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateJSON(t *testing.T) {
	bad, _ := filepath.Abs(severalBad)
	orders, _ := filepath.Abs("../../pipelines/orders.yaml")
	badTest := testFile(t, severalBad, "  - {name: a, input: [{value: 1}]}\n")
	wrongSink := testFile(t, "../../pipelines/orders.yaml", "  - {name: a, input: [{value: 1}]}\n  - name: b\n    input: [{value: 1}]\n    expect: {nowhere: []}\n")
	cases := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		ok     bool
		files  []wantFile
		stderr string // all of it
	}{
		{"an ok file", []string{"--format", "json", "../../pipelines/orders.yaml"}, "", exitOK, true,
			[]wantFile{{file: "../../pipelines/orders.yaml", ok: true}}, ""},
		{"a warning file is ok", []string{"--format=json", warnFile}, "", exitOK, true,
			[]wantFile{{file: warnFile, ok: true, diags: []want{{"warning", warnFile, 19, 9, "stages[2].to", `"out" is also reached from "route" (line 14)`}}}}, ""},
		{"a warning file under --strict is not", []string{"--format=json", "--strict", warnFile}, "", exitInvalid, false,
			[]wantFile{{file: warnFile, diags: []want{{"warning", warnFile, 19, 9, "stages[2].to", `"out" is also reached`}}}}, ""},
		{"an invalid file: every error", []string{"--format", "json", severalBad}, "", exitInvalid, false,
			[]wantFile{{file: severalBad, diags: []want{
				{"error", severalBad, 7, 10, "source.start", `"newest" is not one of earliest, latest`},
				{"error", severalBad, 17, 15, "stages[1].when", "unknown field total"},
				{"error", severalBad, 22, 18, "sinks[0].compression", `"brotli" is not one of`},
			}}}, ""},
		{"a missing file, beside an ok one", []string{"--format", "json", "nope.yaml", "../../pipelines/orders.yaml"}, "", exitUsage, false,
			[]wantFile{
				{file: "nope.yaml", diags: []want{{"error", "nope.yaml", 0, 0, "", "open nope.yaml: no such file or directory"}}},
				{file: "../../pipelines/orders.yaml", ok: true},
			}, ""},
		{"stdin, valid", []string{"--format", "json", "-"}, clickstreamFromHere(t), exitOK, true,
			[]wantFile{{file: "<stdin>", ok: true}}, ""},
		{"stdin, invalid", []string{"-", "--format", "json"}, "version: 1\nname: x\n", exitInvalid, false,
			[]wantFile{{file: "<stdin>", diags: []want{
				{"error", "<stdin>", 1, 1, "sinks", `missing required field "sinks"`},
				{"error", "<stdin>", 1, 1, "source", `missing required field "source"`},
			}}}, ""},
		{"a test file", []string{"--format", "json", "../../pipelines/orders.test.yaml"}, "", exitOK, true,
			[]wantFile{{file: "../../pipelines/orders.test.yaml", ok: true, pipeline: "../../pipelines/orders.yaml", cases: 5}}, ""},
		{"a test file of an invalid pipeline: the pipeline's errors, where they are", []string{"--format", "json", badTest}, "", exitInvalid, false,
			[]wantFile{{file: badTest, diags: []want{
				{"error", badTest, 0, 0, "", "tests " + bad + ", which is not valid"},
				{"error", bad, 7, 10, "source.start", `"newest" is not one of earliest, latest`},
				{"error", bad, 17, 15, "stages[1].when", "unknown field total"},
				{"error", bad, 22, 18, "sinks[0].compression", `"brotli" is not one of`},
			}}}, ""},
		{"a test file expecting a sink its pipeline lacks: at the case's line", []string{"--format", "json", wrongSink}, "", exitInvalid, false,
			[]wantFile{{file: wrongSink, diags: []want{{"error", wrongSink, 4, 0, "", `case "b": expect names "nowhere", which is no sink of ` + orders}}}}, ""},
		{"a missing test file", []string{"--format", "json", "nope.test.yaml"}, "", exitUsage, false,
			[]wantFile{{file: "nope.test.yaml", diags: []want{{"error", "nope.test.yaml", 0, 0, "", "open nope.test.yaml: no such file or directory"}}}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runValidate(t, c.args, c.stdin)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, stdout, stderr)
			}
			if stderr != c.stderr {
				t.Errorf("stderr %q, want %q", stderr, c.stderr)
			}
			r := decodeOne(t, stdout)
			if r.OK != c.ok || len(r.Files) != len(c.files) {
				t.Fatalf("ok %v with %d file(s), want %v with %d:\n%s", r.OK, len(r.Files), c.ok, len(c.files), stdout)
			}
			for i, w := range c.files {
				f := r.Files[i]
				if f.File != w.file || f.OK != w.ok || f.Pipeline != w.pipeline || f.Cases != w.cases || len(f.Diagnostics) != len(w.diags) {
					t.Errorf("file %d: got %+v, want %+v", i, f, w)
					continue
				}
				for j, d := range f.Diagnostics {
					wd := w.diags[j]
					got := want{map[bool]string{false: "error", true: "warning"}[d.Warning], d.Pos.File, d.Pos.Line, d.Pos.Col, d.Path, wd.message}
					if got != wd || !strings.Contains(d.Msg, wd.message) {
						t.Errorf("file %d, diagnostic %d: got %+v %q, want %+v", i, j, got, d.Msg, wd)
					}
				}
			}
		})
	}
}

// decodeOne reads stdout as exactly one JSON report, with nothing after it.
func decodeOne(t *testing.T, stdout string) diag.Report {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	var r diag.Report
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("stdout is no report: %v\n%s", err, stdout)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("more than one document on stdout:\n%s", stdout)
	}
	return r
}
