package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

func TestCLI(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     string // a fragment expected on stdout
		stderr     string // a fragment expected on stderr
		notInOuput string
	}{
		{"no args", nil, exitUsage, "Usage:", "", ""},
		{"help", []string{"--help"}, exitOK, "pythia-pipe validate", "", ""},
		{"unknown command", []string{"vaildate"}, exitUsage, "", `unknown command "vaildate" (did you mean validate?)` + "\nusage: pythia-pipe COMMAND [ARGS...], COMMAND one of dev, dlq, docs, graph, run, schema, tap, test, topics, validate, version (pythia-pipe help describes each)\n", "Flags may come"},
		{"unknown command, nothing near", []string{"frobnicate"}, exitUsage, "", "unknown command \"frobnicate\"\nusage: pythia-pipe COMMAND", "did you mean"},
		{"validate a folder", []string{"validate", "../../pipelines"}, exitOK, "../../pipelines/clickstream.test.yaml: ok (5 test case(s)", "", "data"},
		{"validate a folder and a file", []string{"validate", "../../testdata/good", "../../testdata/bad/14-bad-enum.yaml"}, exitInvalid, "../../testdata/good/optional-object.yaml: ok", "did you mean earliest?", ""},
		{"validate a folder of invalid files: all reported", []string{"validate", "../../testdata/bad"}, exitInvalid, "", "85-quoted-then-more.yaml: 1 error", ""},
		{"validate a folder without pipelines", []string{"validate", "../../pipelines/data"}, exitUsage, "", "pythia-pipe: ../../pipelines/data holds no *.yaml or *.yml", ""},
		{"graph help names its arguments", []string{"graph", "--help"}, exitOK, "", "usage: pythia-pipe graph [--format dot|mermaid] FILE\n  -format FORMAT", ""},
		{"validate examples", []string{"validate", "../../pipelines/orders.yaml", "../../pipelines/clickstream.yaml"}, exitOK, "clickstream.yaml: ok", "", ""},
		{"validate bad", []string{"validate", "../../testdata/bad/21-expr-unknown-field.yaml"}, exitInvalid, "",
			"21-expr-unknown-field.yaml:16:15: stages[1].when: unknown field ammount (did you mean amount?)\n 16 |     when: msg.ammount > 0\n    |               ^", ""},
		{"validate good and bad", []string{"validate", "../../pipelines/orders.yaml", "../../testdata/bad/14-bad-enum.yaml"}, exitInvalid, "orders.yaml: ok", "did you mean earliest?", ""},
		{"validate missing file", []string{"validate", "nope.yaml"}, exitUsage, "", "no such file", ""},
		{"validate no file", []string{"validate"}, exitUsage, "", "usage: pythia-pipe validate", ""},
		{"graph dot", []string{"graph", "../../pipelines/orders.yaml"}, exitOK, `"stage:route" -> "sink:big" [label="msg.amount >= 1000"]`, "", ""},
		{"graph flag after file", []string{"graph", "../../pipelines/orders.yaml", "--format", "mermaid"}, exitOK, "flowchart LR", "", "digraph"},
		{"graph flag before file", []string{"graph", "--format=mermaid", "../../pipelines/orders.yaml"}, exitOK, "flowchart LR", "", ""},
		{"graph bad format", []string{"graph", "../../pipelines/orders.yaml", "--format", "svg"}, exitUsage, "", "usage: pythia-pipe graph [--format dot|mermaid] FILE", ""},
		{"graph invalid pipeline", []string{"graph", "../../testdata/bad/09-cycle.yaml"}, exitInvalid, "", "cycle: parse -> valid -> parse", "digraph"},
		{"docs", []string{"docs"}, exitOK, "# Pipeline file reference", "", ""},
		{"docs with an argument", []string{"docs", "out"}, exitUsage, "", "usage: pythia-pipe docs [--dir DIR]", ""},
		{"validate a test file", []string{"validate", "../../pipelines/orders.test.yaml"}, exitOK, "orders.test.yaml: ok (5 test case(s) of ../../pipelines/orders.yaml", "", ""},
		{"version", []string{"version"}, exitOK, "franz-go v1.", "", ""},
		{"a command's help", []string{"tap", "--help"}, exitOK, "", "-from-beginning", ""},
		{"help of a command without flags", []string{"schema", "--help"}, exitOK, "usage: pythia-pipe schema", "", ""},
		{"help of a command with a subcommand", []string{"dlq", "-h"}, exitOK, "usage: pythia-pipe dlq replay FILE", "", ""},
		{"test the examples", []string{"test", "../../pipelines"}, exitOK, "10 file(s), 37 case(s): 37 passed, 0 failed", "", "FAIL"},
		{"test a pipeline by its file", []string{"test", "../../pipelines/orders.yaml"}, exitOK, "ok   ../../pipelines/orders.test.yaml: 5 case(s)", "", ""},
		{"test failing cases", []string{"test", "../../pipetest/testdata/failing.test.yaml"}, exitInvalid,
			"FAIL ../../pipetest/testdata/failing.test.yaml:4: a field differs\n    out record 1 (line 7), from input 1: value.region: expected \"eu\", got \"EU\"", "", ""},
		{"test a pipeline without tests", []string{"test", "../../testdata/good"}, exitUsage, "", "holds no *.test.yaml", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), c.stdout) {
				t.Errorf("stdout lacks %q:\n%s", c.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, stderr.String())
			}
			if c.notInOuput != "" && strings.Contains(stdout.String()+stderr.String(), c.notInOuput) {
				t.Errorf("output has %q", c.notInOuput)
			}
		})
	}
}

func TestSchemaIsJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"schema"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var s map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s["title"] != "pythia-pipe pipeline" {
		t.Errorf("title %v", s["title"])
	}
}

// dev runs the orders example on the in-process broker and says what went where and why.
func TestDevOrders(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"dev", "../../pipelines/orders.yaml", "--feed", "../../testdata/orders-feed.jsonl"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"fed 20 records from ../../testdata/orders-feed.jsonl into topic orders (3 partitions)",
		"sink out               9 records  → topic orders-out",
		"sink big               4 records  → topic orders-big",
		`"region":"US","total_cents":125000`,
		"dlq                    4 records  → topic orders-dlq",
		"parse: decode json: amount: expected float, got a string",
		"dropped                3 records  by valid (msg.amount > 0): 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// dev says which stage dropped records whatever its type: a filter by its condition, others
// (an enrich that found nothing, with on_missing: drop) without one.
func TestDevDropsOfEveryType(t *testing.T) {
	dir := t.TempDir()
	file, feed := filepath.Join(dir, "drops.yaml"), filepath.Join(dir, "feed.jsonl")
	src := `version: 1
name: drops
source: {type: kafka, topics: [in]}
stages:
  - {name: parse, type: decode}
  - {name: tier, type: enrich, expr: 'msg.n > 1 ? {"gold": true} : nil', into: tier, on_missing: drop}
  - {name: big, type: filter, when: msg.n > 2}
sinks:
  - {name: out, type: kafka, topic: out}
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(feed, []byte("{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"dev", file, "--feed", feed}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"dropped                2 records  by", "big (msg.n > 2): 1", "tier (", "sink out               1 records"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// topics create makes the topics with their settings; a second run changes nothing.
func TestTopicsCreate(t *testing.T) {
	b, err := devbroker.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Setenv("KAFKA_BROKERS", strings.Join(b.Addrs(), ","))
	var stdout, stderr bytes.Buffer
	if code := run([]string{"topics", "create", "../../pipelines/clickstream.yaml"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"topic clicks: created (1 partitions, replication factor 1, cleanup.policy=delete)",
		"topic clicks-pageviews: created (6 partitions, replication factor 1, cleanup.policy=delete, retention.ms=259200000)",
		"topic clicks-dlq: created (1 partitions, replication factor 1, cleanup.policy=delete, retention.ms=1209600000)",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	if got := len(b.EndOffsets("clicks-pageviews")); got != 6 {
		t.Errorf("clicks-pageviews has %d partitions, want 6", got)
	}
	stdout.Reset()
	if code := run([]string{"topics", "create", "../../pipelines/clickstream.yaml"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("second run: exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	if strings.Contains(stdout.String(), "created") || strings.Count(stdout.String(), "exists, as configured") != 4 {
		t.Errorf("second run changed something:\n%s", stdout.String())
	}
}

// topics create makes a table lookup's topic, compacted, with the source's create block's
// partitions, besides the pipeline's own topics.
func TestTopicsCreateTable(t *testing.T) {
	b, err := devbroker.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Setenv("KAFKA_BROKERS", strings.Join(b.Addrs(), ","))
	var stdout, stderr bytes.Buffer
	if code := run([]string{"topics", "create", "../../pipelines/orders-enriched.yaml"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	want := "topic customers: created (1 partitions, replication factor 1, cleanup.policy=compact)"
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, stdout.String())
	}
	if got := len(b.EndOffsets("customers")); got != 1 {
		t.Errorf("customers has %d partitions, want 1", got)
	}
}

// topics create makes the topics a computed topic may name when topic_allow names them, and
// says which patterns it cannot make.
func TestTopicsCreateComputed(t *testing.T) {
	b, err := devbroker.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Setenv("KAFKA_BROKERS", strings.Join(b.Addrs(), ","))
	file := filepath.Join(t.TempDir(), "regions.yaml")
	if err := os.WriteFile(file, []byte(`version: 1
name: regions
kafka: {brokers: "${KAFKA_BROKERS}"}
source: {type: kafka, topics: [orders]}
stages: [{name: parse, type: decode, schema: {region: string}}]
sinks:
  - {name: by-region, type: kafka, topic_expr: '"orders-" + msg.region', topic_allow: [orders-eu, orders-us, "orders-test-*"],
     create: {partitions: 3}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"topics", "create", file}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"topic orders-eu: created (3 partitions",
		"topic orders-us: created (3 partitions",
		"topics matching orders-test-* (computed by sink by-region): not created",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// topics create makes each stateful stage's changelog, compacted, with the partitions of the
// source's create block, else with as many as the source topic has on the brokers (made
// beforehand, or by topics create itself); a second run changes nothing. A source topic made
// beforehand differs from the create block's default of 1 partition, which topics create
// says (exit 1), and its changelog follows the topic.
func TestTopicsCreateChangelogs(t *testing.T) {
	const noCreate = `version: 1
name: once
kafka: {brokers: "${KAFKA_BROKERS}"}
source: {type: kafka, topics: [events], group: dedupers}
stages: [{name: first, type: dedupe, within: 1h}]
sinks: [{name: out, type: kafka, topic: events-once}]
`
	cases := []struct {
		name, file string
		existing   int32 // partitions of the source topic made beforehand; 0: none
		changelog  string
		partitions int
		configured int // topics "exists, as configured" on the second run: the file's, and the changelog
		code       int
	}{
		{"the example: its source's create block", "../../pipelines/dedupe.yaml", 0, "payment-dedupers-once-changelog", 6, 4, exitOK},
		{"no create block: the source topic's partitions on the brokers", noCreate, 4, "dedupers-first-changelog", 4, 2, exitInvalid},
		{"no create block, no source topic: as topics create made it", noCreate, 0, "dedupers-first-changelog", 1, 3, exitOK},
		{"repartitioned: the repartition topic too", strings.Replace(noCreate, "within: 1h", "within: 1h, key: 'string(key)'", 1), 0, "dedupers-first-changelog", 1, 4, exitOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := devbroker.Start()
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			t.Setenv("KAFKA_BROKERS", strings.Join(b.Addrs(), ","))
			file := c.file
			if strings.HasPrefix(file, "version:") {
				file = filepath.Join(t.TempDir(), "once.yaml")
				if err := os.WriteFile(file, []byte(c.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if c.existing > 0 {
				if err := b.CreateTopic("events", c.existing); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			if code := run([]string{"topics", "create", file}, &stdout, &stderr); code != c.code {
				t.Fatalf("exit %d, want %d: %s%s", code, c.code, stdout.String(), stderr.String())
			}
			want := fmt.Sprintf("topic %s: created (%d partitions, replication factor 1, cleanup.policy=compact)\n", c.changelog, c.partitions)
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, stdout.String())
			}
			if got := len(b.EndOffsets(c.changelog)); got != c.partitions {
				t.Errorf("%s has %d partitions, want %d", c.changelog, got, c.partitions)
			}
			if got := b.TopicConfig(c.changelog, "cleanup.policy"); got != "compact" {
				t.Errorf("%s has cleanup.policy %q, want compact", c.changelog, got)
			}
			if strings.Contains(c.file, "key:") {
				want := "topic dedupers-first-repartition: created (1 partitions, replication factor 1, cleanup.policy=delete)\n"
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, stdout.String())
				}
			}
			stdout.Reset()
			if code := run([]string{"topics", "create", file}, &stdout, &stderr); code != c.code {
				t.Fatalf("second run: exit %d, want %d: %s%s", code, c.code, stdout.String(), stderr.String())
			}
			if strings.Contains(stdout.String(), "created") || strings.Count(stdout.String(), "exists, as configured") != c.configured {
				t.Errorf("second run changed something:\n%s", stdout.String())
			}
		})
	}
}

// Logs are JSON when not on a terminal; every line parses, and the record-level lines name
// the topic, partition, offset and stage.
func TestLogsAreStructured(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"dev", "../../pipelines/orders.yaml", "--feed", "../../testdata/orders-feed.jsonl", "--log-level", "debug"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	records := 0
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		if entry["time"] == nil || entry["level"] == nil || entry["msg"] == nil {
			t.Fatalf("a log line without time, level or msg: %q", line)
		}
		if entry["msg"] == "dead-lettered" {
			records++
			for _, field := range []string{"pipeline", "stage", "topic", "partition", "offset", "err"} {
				if _, ok := entry[field]; !ok {
					t.Errorf("record-level line without %s: %q", field, line)
				}
			}
		}
	}
	if records != 4 {
		t.Errorf("%d dead-lettered lines, want 4 (one per bad record of the feed)", records)
	}
}

func TestTestWritesJUnit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.xml")
	var out, errOut bytes.Buffer
	if code := run([]string{"test", "../../pipelines", "--junit", path}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	report, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), `<testsuite name="../../pipelines/orders.test.yaml" tests="5" failures="0"`) {
		t.Fatalf("report:\n%s", report)
	}
}

// The dedupe example runs under dev, its state in a temporary folder: a copy within 24 hours
// dropped (and said to be a duplicate), one a day later passing, a payment with no key
// dead-lettered.
func TestDevDedupe(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"dev", "../../pipelines/dedupe.yaml", "--feed", "../../testdata/payments-dedupe-feed.jsonl", "--expect", "out=3,dlq=1,dropped=1"}
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"sink out               3 records  → topic payments-once",
		"once: dedupe: the record has no key",
		"dropped                1 records  by once (duplicates within 24h): 1",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// The examples run under dev: clickstream starts at latest, which dev reads from the
// earliest (the feed is in before the group joins), saying so.
func TestDevClickstream(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"dev", "../../pipelines/clickstream.yaml", "--feed", "../../testdata/clicks-feed.jsonl"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"note: start: latest would skip the feed",
		"sink pageviews         1 records  → topic clicks-pageviews",
		"sink purchases         1 records  → topic clicks-purchases",
		"parse: decode json: ts: missing time",
		"dropped                1 records  by humans",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// Under dev, the topics a topic_expr computes are made as they are written to.
func TestDevCreatesComputedTopics(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "routed.yaml")
	src := `version: 1
name: routed
kafka: {brokers: localhost:9092}
source: {type: kafka, topics: [in]}
stages:
  - {name: d, type: decode}
sinks:
  - {name: by-kind, type: kafka, topic_expr: '"kind-" + msg.kind', topic_allow: ["kind-*"]}
dlq: {type: kafka, topic: in-dlq}
`
	feed := filepath.Join(dir, "feed.jsonl")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(feed, []byte("{\"kind\":\"a\"}\n{\"kind\":\"b\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"dev", file, "--feed", feed}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "sink by-kind           2 records") || !strings.Contains(out, "dlq                    0 records") {
		t.Fatalf("output:\n%s", out)
	}
}
