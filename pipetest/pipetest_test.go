package pipetest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Every example pipeline has a test file, and every case of it passes.
func TestExamples(t *testing.T) {
	pipelines, err := filepath.Glob("../pipelines/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tested := 0
	for _, p := range pipelines {
		if strings.HasSuffix(p, ".test.yaml") {
			continue
		}
		tested++
		test := strings.TrimSuffix(p, ".yaml") + ".test.yaml"
		t.Run(filepath.Base(p), func(t *testing.T) {
			f, err := Load(test)
			if err != nil {
				t.Fatalf("%s has no test file that loads: %v", p, err)
			}
			results, err := Run(context.Background(), f, quiet)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if len(r.Failures) > 0 {
					t.Errorf("%s:%d %s:\n%s", test, r.Case.Line, r.Case.Name, strings.Join(r.Failures, "\n"))
				}
			}
		})
	}
	if tested < 3 {
		t.Fatalf("found %d example pipelines", tested)
	}
}

// Each kind of difference is said, naming what was expected and what came.
func TestFailuresAreSaid(t *testing.T) {
	_, results := runFailing(t)
	want := map[string][]string{
		"a field differs":                             {`out record 1 (line 7), from input 1: value.region: expected "eu", got "EU"`},
		"a record too few":                            {"out: expected 0 record(s), got 1", "out record 1: not expected, got {"},
		"a record too many":                           {"out: expected 1 record(s), got 0", "out record 1 (line 13): missing"},
		"an exact value with a field left out":        {"value.total_cents: not expected, got 1250"},
		"the key, a header, the reason and the stage": {`key: expected "c2", got "c1"`, `headers.h: expected "2", got "1"`, `reason: expected it to say "timeout"`, `stage: expected "valid", got "parse"`},
		"a count of dropped":                          {"dropped: expected 1 input record(s) to reach no sink, 0 did"},
		"a stop that does not come":                   {`the pipeline did not stop (expected it to stop with "no dlq")`},
	}
	if len(results) != len(want) {
		t.Fatalf("%d results for %d cases", len(results), len(want))
	}
	for _, r := range results {
		said := strings.Join(r.Failures, "\n")
		for _, w := range want[r.Case.Name] {
			if !strings.Contains(said, w) {
				t.Errorf("%s: the failures do not say %q:\n%s", r.Case.Name, w, said)
			}
		}
		if len(want[r.Case.Name]) == 0 {
			t.Errorf("no expectation for case %q", r.Case.Name)
		}
	}
}

// Load's errors say what is wrong, each a Problem at its line of the test file (0: the file
// as a whole).
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, file, err string
		line            int
	}{
		{"unknown field", "cases: [{name: x, input: [{value: 1, bogus: 2}]}]", "p.test.yaml:1: unknown field bogus", 1},
		{"yaml syntax", "cases:\n  - name: x\n input: []\n", "p.test.yaml:2: YAML syntax: did not find expected key", 2},
		{"no cases", "env: {A: b}", "p.test.yaml: no cases", 0},
		{"a case without a name", "cases: [{input: [{value: 1}]}]", "every case needs a name", 1},
		{"no input", "cases:\n  - {name: x}", `p.test.yaml:2: case "x": no input records`, 2},
		{"no value", "cases: [{name: x, input: [{key: a}]}]", "input 1: value is missing (null for a tombstone)", 1},
		{"a bad timestamp", "cases: [{name: x, input: [{value: 1, timestamp: yesterday}]}]", "timestamp:", 1},
		{"a mock's failure", "mocks:\n  - {url: 'http://x/*', fail: slow}\ncases: [{name: x, input: [{value: 1}]}]", `fail: "slow" is not timeout or connection`, 2},
		{"a mock without url", "mocks: [{status: 500}]\ncases: [{name: x, input: [{value: 1}]}]", "a mock needs a url", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.test.yaml")
			if err := os.WriteFile(path, []byte(c.file), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("got %v, want an error saying %q", err, c.err)
			}
			var p *Problem
			if !errors.As(err, &p) || p.File != path || p.Line != c.line {
				t.Errorf("got %#v, want a problem of %s at line %d", p, path, c.line)
			}
		})
	}
}

// A case that expects records of a sink the pipeline does not have is found before anything runs.
func TestCheckNamesUnknownSinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orders.test.yaml")
	src := "pipeline: " + filepath.Join(mustAbs(t, "../pipelines"), "orders.yaml") + "\ncases:\n  - name: x\n    input: [{value: 1}]\n    expect: {nowhere: []}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := path + `:3: case "x": expect names "nowhere", which is no sink of`
	if err := Check(f); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "(out, big, dlq)") {
		t.Fatalf("got %v, want %q", err, want)
	}
	if _, err := Run(context.Background(), f, quiet); err == nil {
		t.Fatal("Run ran a file that Check refuses")
	}
}

// A stateful stage's changes go to a changelog sink node the engine adds (once.changelog),
// which is none of the file's sinks: what it receives is neither compared nor counted as
// reaching a sink, and a case cannot expect records of it.
func TestChangelogIsNoSink(t *testing.T) {
	dir := t.TempDir()
	pipelineFile := filepath.Join(mustAbs(t, "../pipelines"), "dedupe.yaml")
	write := func(name, cases string) *File {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("pipeline: "+pipelineFile+"\ncases:\n"+cases), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	const payment = `{key: p1, timestamp: "2026-11-26T10:00:00Z", value: {payment_id: p1, account_id: a, amount: 1, currency: EUR}}`
	f := write("ok.test.yaml", "  - name: one passes, its copy is dropped\n    input: ["+payment+", "+payment+"]\n"+
		"    expect: {out: [{key: p1}]}\n    dropped: 1\n")
	results, err := Run(context.Background(), f, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || len(results[0].Failures) > 0 {
		t.Fatalf("the changelog's records were compared or counted: %+v", results)
	}
	f = write("changelog.test.yaml", "  - name: x\n    input: ["+payment+"]\n    expect: {once.changelog: []}\n")
	if err := Check(f); err == nil || !strings.Contains(err.Error(), `expect names "once.changelog", which is no sink of`) ||
		!strings.Contains(err.Error(), "(out, dlq)") {
		t.Fatalf("got %v, want once.changelog refused as no sink", err)
	}
}

// A test file of an invalid pipeline carries the pipeline's diagnostics, printed in its text.
func TestCheckInvalidPipeline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.test.yaml")
	bad := filepath.Join(mustAbs(t, "../testdata/bad"), "21-expr-unknown-field.yaml")
	if err := os.WriteFile(path, []byte("pipeline: "+bad+"\ncases: [{name: x, input: [{value: 1}]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	err = Check(f)
	var inv *InvalidPipelineError
	if !errors.As(err, &inv) || inv.Test != path || inv.Pipeline != bad || len(inv.Diags) != 1 || inv.Diags[0].Pos.Line != 16 {
		t.Fatalf("got %#v", err)
	}
	want := path + " tests " + bad + ", which is not valid:\n" + bad + ":16:15: stages[1].when: unknown field ammount"
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "\n 16 |     when: msg.ammount > 0\n") {
		t.Errorf("got\n%v\nwant it to begin with\n%s", err, want)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestWildcard(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"http://a/x", "http://a/x", true},
		{"http://a/x", "http://a/xy", false},
		{"http://a/*", "http://a/b/c?d=e", true},
		{"http://a/*?id=1&*", "http://a/v1/s?id=1&amount=2", true},
		{"http://a/*?id=1&*", "http://a/v1/s?id=12&amount=2", false},
		{"*", "", true},
		{"*x*y", "axbxy", true},
		{"*x*y", "axbx", false},
	}
	for _, c := range cases {
		if got := wildcard(c.pattern, c.s); got != c.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

// runFailing runs testdata/failing.test.yaml, whose every case fails.
func runFailing(t *testing.T) (*File, []Result) {
	t.Helper()
	f, err := Load("testdata/failing.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results, err := Run(context.Background(), f, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return f, results
}

func TestJUnit(t *testing.T) {
	f, results := runFailing(t)
	var b bytes.Buffer
	if err := WriteJUnit(&b, []Suite{{File: f.Path, Results: results}}); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if s := got.Suites[0]; s.Tests != 7 || s.Failures != 7 || len(s.Cases) != 7 || s.Cases[0].Failure == nil {
		t.Fatalf("got %+v", s)
	}
}

// A table's value given as a mapping that its Avro schema cannot hold fails the case, naming
// the table record and the field.
func TestTableValueNotOfTheSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enriched.test.yaml")
	src := "pipeline: " + filepath.Join(mustAbs(t, "../pipelines"), "orders-enriched-avro.yaml") +
		"\ntables:\n  customers-avro:\n    - {key: c1, value: {name: Ada, tier: platinum, country: null}}\n" +
		"cases:\n  - name: x\n    input: [{key: o1, value: {order_id: o1, customer_id: c1, total: 1}}]\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	results, err := Run(context.Background(), f, quiet)
	if err != nil {
		t.Fatal(err)
	}
	want := `tables.customers-avro[0] cannot be written as the table of stage customer reads it: field tier: cannot use string with Avro type enum: unknown symbol "platinum"`
	if len(results) != 1 || len(results[0].Failures) != 1 || results[0].Failures[0] != want {
		t.Fatalf("results %+v, want the one failure %q", results, want)
	}
}
