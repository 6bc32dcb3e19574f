package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dev needs none of the production connection's variables: its broker is in process and
// plaintext, so unset ${...} in kafka.brokers and kafka.security are noted, not errors; run
// and validate still refuse them.
func TestDevWithUnsetSecrets(t *testing.T) {
	for _, k := range []string{"PYTHIA_TEST_BROKERS", "PYTHIA_TEST_USER", "PYTHIA_TEST_PASSWORD"} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "secure.yaml")
	if err := os.WriteFile(file, []byte(`version: 1
name: secure
kafka:
  brokers: ${PYTHIA_TEST_BROKERS}
  security:
    protocol: SASL_SSL
    sasl: {mechanism: SCRAM-SHA-512, username: ${PYTHIA_TEST_USER}, password: ${PYTHIA_TEST_PASSWORD}}
    tls: {ca_file: ${PYTHIA_TEST_CA:-/nonexistent/ca.pem}}
source: {type: kafka, topics: [in]}
stages: [{name: parse, type: decode, schema: {id: int}}]
sinks: [{name: out, type: kafka, topic: out}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	feed := filepath.Join(dir, "feed.jsonl")
	if err := os.WriteFile(feed, []byte("{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		output []string // fragments expected on stdout and stderr together
	}{
		{"dev", []string{"dev", file, "--feed", feed}, exitOK, []string{
			"note: ${PYTHIA_TEST_BROKERS}, ${PYTHIA_TEST_PASSWORD} and ${PYTHIA_TEST_USER} are unset: fine for dev, which ignores kafka.brokers and kafka.security\n",
			"sink out               3 records  → topic out",
		}},
		{"validate", []string{"validate", file}, exitInvalid, []string{
			"kafka.brokers: environment variable PYTHIA_TEST_BROKERS is not set",
			"kafka.security.sasl.username: environment variable PYTHIA_TEST_USER is not set",
			"kafka.security.sasl.password: environment variable PYTHIA_TEST_PASSWORD is not set",
			`kafka.security.tls.ca_file: file "/nonexistent/ca.pem" does not exist`,
			"4 errors",
		}},
		{"run", []string{"run", file}, exitInvalid, []string{"environment variable PYTHIA_TEST_PASSWORD is not set", "4 errors"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s", code, c.code, out)
			}
			for _, want := range c.output {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
