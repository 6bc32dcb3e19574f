package main

import (
	"bytes"
	"strings"
	"testing"
)

// dev runs the Avro example with a registry in process beside the broker: the feed's JSON
// written in Avro with the decode stage's schema, the sink's bodies read back for the samples.
func TestDevOrdersAvro(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"dev", "../../pipelines/orders-avro.yaml", "--feed", "../../testdata/orders-avro-feed.jsonl"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"note: the schema registry is in process",
		"wrote 5 feed records as stage parse reads them (avro, framed for the in-process registry); 2 as written:",
		`record 5 cannot be written as stage parse reads it: field region: cannot use string with Avro type enum: unknown symbol "MARS"`,
		"sink out               4 records  → topic orders-avro-out",
		`key=c-02 {"big":true,"customer_id":"c-02","order_id":"o-2002","placed_at":"2026-11-26T16:05:01Z"`,
		"dlq                    2 records  → topic orders-avro-dlq",
		"parse: decode avro: the value does not start with the registry's magic byte 0",
		"dropped                1 records  by valid (float(msg.amount) > 0): 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// validate checks an Avro pipeline offline, its schema from the local file.
func TestValidateAvroOffline(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "../../testdata/bad/58-avro-unknown-field.yaml"}, &stdout, &stderr); code != exitInvalid {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String() + stderr.String()
	if want := "58-avro-unknown-field.yaml:16:15: stages[1].when: unknown field ammount (did you mean amount?)"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}
