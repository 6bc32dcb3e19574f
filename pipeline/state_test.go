package pipeline

import (
	"bytes"
	"strings"
	"testing"
)

// A stateful stage keeping state by a computed key is repartitioned: validate names where,
// graph draws the topic between the stage and what comes before it, and the source may then
// read several topics; one keeping state by the record's key is not.
func TestRepartitionShown(t *testing.T) {
	cases := []struct {
		name, key, topics string
		repartition       string // "" when none
		err               string
	}{
		{name: "by a field", key: "key: msg.payment_id", topics: "[payments]", repartition: "pay-once-repartition"},
		{name: "by the record's key", key: "", topics: "[payments]"},
		{name: "key written as key", key: "key: key", topics: "[payments]"},
		{name: "two topics, repartitioned", key: "key: msg.payment_id", topics: "[payments, refunds]", repartition: "pay-once-repartition"},
		{name: "two topics by the record's key", key: "", topics: "[payments, refunds]", err: "must read one topic"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := `version: 1
name: pay
source: {type: kafka, topics: ` + c.topics + `}
stages:
  - {name: parse, type: decode, schema: {payment_id: string}}
  - {name: once, type: dedupe, within: 1h` + map[bool]string{true: ", " + c.key, false: ""}[c.key != ""] + `}
sinks:
  - {name: out, type: kafka, topic: out}
`
			p, diags := Parse("t.yaml", []byte(src), Options{})
			if c.err != "" {
				if diags.Errors() == 0 || !strings.Contains(diags.Err().Error(), c.err) {
					t.Fatalf("diagnostics %v, want %q", diags, c.err)
				}
				return
			}
			if len(diags) > 0 {
				t.Fatal(diags.Err())
			}
			if got := p.Repartition(p.StageByName("once")); got != c.repartition {
				t.Errorf("repartition topic %q, want %q", got, c.repartition)
			}
			notes := strings.Join(p.StateNotes(), "\n")
			var dot bytes.Buffer
			if err := p.WriteDOT(&dot); err != nil {
				t.Fatal(err)
			}
			edge := `"stage:parse" -> "repartition:once"`
			if c.repartition == "" {
				edge = `"stage:parse" -> "stage:once"`
			}
			if !strings.Contains(dot.String(), edge) || strings.Contains(notes, "repartitioned") != (c.repartition != "") {
				t.Errorf("graph lacks %s, or notes %q", edge, notes)
			}
		})
	}
}
