package pipeline

import (
	"testing"
	"time"
)

// commit_interval's default is the delivery mode's: how often offsets are committed
// at-least-once, how long a transaction reads (the latency it adds) exactly-once.
func TestCommitIntervalDefault(t *testing.T) {
	cases := []struct {
		name, delivery, source string
		want                   time.Duration
	}{
		{"at-least-once", "", "{type: kafka, topics: [in]}", time.Second},
		{"exactly-once", "delivery: exactly_once\n", "{type: kafka, topics: [in]}", 100 * time.Millisecond},
		{"exactly-once, set", "delivery: exactly_once\n", "{type: kafka, topics: [in], commit_interval: 2s}", 2 * time.Second},
		{"at-least-once, set", "", "{type: kafka, topics: [in], commit_interval: 250ms}", 250 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "version: 1\nname: t\n" + c.delivery + "kafka: {brokers: localhost:9092}\nsource: " + c.source + "\nsinks: [{name: o, type: kafka, topic: out}]\n"
			p, diags := parseString(t, src, nil)
			if len(diags) > 0 {
				t.Fatal(diags.Err())
			}
			if got := p.KafkaSource().CommitInterval; got != c.want {
				t.Fatalf("commit_interval %v, want %v", got, c.want)
			}
		})
	}
}
