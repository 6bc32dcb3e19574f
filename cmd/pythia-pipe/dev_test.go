package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// devFiles writes a pipeline and a feed for dev into a temporary folder.
func devFiles(t *testing.T, pipeline, feed string) (pipelineFile, feedFile string) {
	t.Helper()
	dir := t.TempDir()
	pipelineFile, feedFile = filepath.Join(dir, "p.yaml"), filepath.Join(dir, "feed.jsonl")
	if err := os.WriteFile(pipelineFile, []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(feedFile, []byte(feed), 0o644); err != nil {
		t.Fatal(err)
	}
	return pipelineFile, feedFile
}

// passes lets tombstones and positive n through; bad JSON goes to the DLQ.
const passes = `version: 1
name: passes
source: {type: kafka, topics: [in]}
stages:
  - {name: parse, type: decode}
  - {name: keep, type: filter, when: 'msg == nil || msg.n > 0'}
sinks:
  - {name: out, type: kafka, topic: out}
dlq: {type: kafka, topic: in-dlq}
`

// A feed of envelopes beside plain lines: headers, tombstones and keys reach the sink, and the
// samples show them, headers sorted by name.
func TestDevEnvelopes(t *testing.T) {
	file, feed := devFiles(t, passes, strings.Join([]string{
		`{"key": "k1", "value": {"n": 1}, "headers": {"trace": "t-1", "a": "x"}, "timestamp": "2026-11-26T10:00:00Z"}`,
		`{"key": "k2", "value": null, "timestamp": 1795687200000}`,
		"k3\t{\"n\": 3}",
		`{"n": 0}`,
		`{"value": "not json"}`,
	}, "\n")+"\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"dev", file, "--feed", feed, "--partitions", "1"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"fed 5 records from " + feed,
		"sink out               3 records  → topic out\n" +
			`      key=k1 headers={a=x,trace=t-1} {"n":1}` + "\n" +
			"      key=k2 null (a tombstone)\n" +
			`      key=k3 {"n":3}` + "\n",
		"dlq                    1 records  → topic in-dlq\n      in/0@4 parse: decode json",
		"dropped                1 records  by keep",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// The docs' example of envelopes (docs/guide/dev-tap-replay.md): the orders example fed a
// plain line, two envelopes (one with headers) and a tombstone, which its filter cannot read.
func TestDevOrdersEnvelopes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"dev", "../../pipelines/orders.yaml", "--feed", "../../testdata/orders-envelopes.jsonl", "--partitions", "1",
		"--expect", "out=1,big=1,dlq=2,dropped=0"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		`      key=c-17 {"amount":42.5,"customer_id":"c-17","order_id":"o-1","region":"EU","total_cents":4250}`,
		`      key=c-03 headers={source=web,trace=t-2} {"amount":1250,"customer_id":"c-03","order_id":"o-2","region":"US","total_cents":125000}`,
		"      orders/0@2 parse: decode json: invalid character 'o' in literal null (expecting 'u')",
		`      orders/0@3 valid: expression "msg.amount > 0": cannot fetch amount from <nil>`,
		"expect: met (out=1, big=1, dlq=2, dropped=0)",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// A feed dev cannot read stops it before anything runs, naming the file and line.
func TestDevFeedErrors(t *testing.T) {
	cases := []struct {
		name string
		feed string
		want string
	}{
		{"a bad envelope", "{\"n\": 1}\n{\"key\": 5, \"value\": {\"n\": 1}}\n", "feed.jsonl:2: key: 5 is a number; a key is a string or null"},
		{"a line over 1 MiB", "{\"n\": 1}\n" + strings.Repeat("x", feedLineLimit+1) + "\n", "feed.jsonl:2: the line is longer than 1 MiB (1048576 bytes)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file, feed := devFiles(t, passes, c.feed)
			var stdout, stderr bytes.Buffer
			if code := run([]string{"dev", file, "--feed", feed}, &stdout, &stderr); code != exitUsage {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, exitUsage, stdout.String(), stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr lacks %q:\n%s", c.want, stderr.String())
			}
			if stdout.Len() > 0 {
				t.Errorf("dev ran:\n%s", stdout.String())
			}
		})
	}
}

// --expect compares the summary's counts: met, exit 0; one differing, exit 1 with what was
// expected and what came; a name the pipeline does not count or a malformed list, exit 2
// before anything runs.
func TestDevExpect(t *testing.T) {
	cases := []struct {
		name   string
		expect []string // --expect values
		code   int
		stdout []string
		stderr string
		ran    bool
	}{
		{"met", []string{"out=9,big=4", "dlq=4,dropped=3"}, exitOK, []string{"\nexpect: met (out=9, big=4, dlq=4, dropped=3)\n"}, "", true},
		{"two differ", []string{"out=9,big=5,dlq=0"}, exitInvalid, []string{
			"\nexpect: 2 of 3 count(s) differ\n  big              expected 5, got 4\n  dlq              expected 0, got 4\n",
		}, "", true},
		{"an unknown name", []string{"out=9,ot=1"}, exitUsage, nil,
			`pythia-pipe: --expect: orders has no "ot" to count (did you mean out?); the names are out, big, dlq, dropped`, false},
		{"not NAME=N", []string{"out"}, exitUsage, nil, `invalid value "out" for flag -expect: "out" is not NAME=N (e.g. out=9,dlq=0)`, false},
		{"a negative count", []string{"out=-1"}, exitUsage, nil, "out=-1: N is a whole number of records, 0 or more", false},
		{"a name twice", []string{"out=9", "out=8"}, exitUsage, nil, "out is expected twice", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"dev", "../../pipelines/orders.yaml", "--feed", "../../testdata/orders-feed.jsonl"}
			for _, e := range c.expect {
				args = append(args, "--expect", e)
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != c.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, c.code, stdout.String(), stderr.String())
			}
			for _, want := range c.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, stderr.String())
			}
			if ran := strings.Contains(stdout.String(), "pythia-pipe dev: pipeline"); ran != c.ran {
				t.Errorf("ran: %v, want %v\n%s", ran, c.ran, stdout.String())
			}
		})
	}
}

// The names --expect takes: each sink's, dlq when there is one, dropped unless a sink has
// that name.
func TestCountNames(t *testing.T) {
	cases := []struct {
		name  string
		sinks []string
		dlq   bool
		want  string
	}{
		{"sinks and a dlq", []string{"a", "b"}, true, "a, b, dlq, dropped"},
		{"no dlq", []string{"a"}, false, "a, dropped"},
		{"a sink named dropped", []string{"a", "dropped"}, false, "a, dropped"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "version: 1\nname: n\nsource: {type: kafka, topics: [in]}\n" +
				"stages: [{name: f, type: filter, when: 'true', to: [" + strings.Join(c.sinks, ", ") + "]}]\nsinks:\n"
			for _, s := range c.sinks {
				src += "  - {name: " + s + ", type: kafka, topic: t-" + s + "}\n"
			}
			if c.dlq {
				src += "dlq: {type: kafka, topic: t-dlq}\n"
			}
			file, _ := devFiles(t, src, "")
			var diags bytes.Buffer
			p, ok, _ := load(file, pipeline.Options{}, &diags)
			if !ok {
				t.Fatalf("the pipeline does not load:\n%s", diags.String())
			}
			if got := strings.Join(countNames(p), ", "); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

// Every flag every command parses is in the top-level help, under that command: read from
// each command's own --help (which exits 0), so that a flag added to a command without its
// flags function, or a command missing from verbs, fails here.
func TestHelpListsEveryFlag(t *testing.T) {
	var top bytes.Buffer
	if code := run([]string{"help"}, &top, &top); code != exitOK {
		t.Fatalf("help: exit %d", code)
	}
	help := top.String()
	flagLine := regexp.MustCompile(`(?m)^  -(\S+)`) // the flag package's PrintDefaults
	seen := map[string]bool{}
	listed := map[string]bool{}
	for _, v := range verbs {
		listed[strings.Fields(v.words)[0]] = true
		t.Run(v.words, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(append(strings.Fields(v.words), "--help"), &out, &out); code != exitOK {
				t.Fatalf("%s --help: exit %d\n%s", v.words, code, out.String())
			}
			start := strings.Index(help, "  pythia-pipe "+v.words+" ")
			if start < 0 {
				start = strings.Index(help, "  pythia-pipe "+v.words+"\n")
			}
			if start < 0 {
				t.Fatalf("the help has no line for %s:\n%s", v.words, help)
			}
			section := help[start+1:]
			if end := strings.Index(section, "\n  pythia-pipe "); end >= 0 {
				section = section[:end]
			}
			for _, m := range flagLine.FindAllStringSubmatch(out.String(), -1) {
				seen[m[1]] = true
				if !regexp.MustCompile(`\n      --?` + regexp.QuoteMeta(m[1]) + `( |\n)`).MatchString(section) {
					t.Errorf("the help of %s lacks -%s (build the command's flags in a flags method that verbs in help.go names):\n%s", v.words, m[1], section)
				}
			}
		})
	}
	for name := range commands {
		if !listed[name] {
			t.Errorf("command %s is not in verbs, so not in the help", name)
		}
	}
	for _, f := range []string{"feed", "junit", "stage", "from-beginning", "n", "format", "metrics-addr"} {
		if !seen[f] {
			t.Errorf("no command's --help showed -%s: is the flag package's format read right?", f)
		}
	}
}
