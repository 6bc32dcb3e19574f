package kafkaio

import (
	"context"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

// topics create: a missing topic is created with its settings, an existing one compared with
// them and never changed, so that a second run changes nothing.
func TestEnsureTopics(t *testing.T) {
	b := startBroker(t, []kafkaconn.Topic{{Name: "same", Partitions: 3, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: "other", Partitions: 1, Configs: map[string]string{"retention.ms": "1000"}}})
	a := newAdmin(t, &kafkaconn.Config{Brokers: b.Addrs()})
	cases := []struct {
		name  string
		topic kafkaconn.Topic
		want  string
	}{
		{"created", kafkaconn.Topic{Name: "fresh", Partitions: 2, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "259200000", "cleanup.policy": "delete"}},
			"topic fresh: created (2 partitions, replication factor 1, cleanup.policy=delete, retention.ms=259200000)"},
		{"exists as configured", kafkaconn.Topic{Name: "same", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
			"topic same: exists, as configured"},
		{"exists but differs", kafkaconn.Topic{Name: "other", Partitions: 4, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "2000", "cleanup.policy": "delete"}},
			"topic other: exists, but differs from the file: partitions 1, want 4; retention.ms=1000, want 2000 (left as it is)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			results, err := a.EnsureTopics(context.Background(), []kafkaconn.Topic{c.topic})
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != 1 || results[0].String() != c.want {
				t.Fatalf("got %v, want %q", results, c.want)
			}
		})
	}
	t.Run("created with its settings, then as configured", func(t *testing.T) {
		if got := b.TopicConfig("fresh", "retention.ms"); got != "259200000" {
			t.Errorf("retention.ms %q", got)
		}
		if got := len(b.EndOffsets("fresh")); got != 2 {
			t.Errorf("%d partitions", got)
		}
		results, err := a.EnsureTopics(context.Background(), []kafkaconn.Topic{cases[0].topic})
		if err != nil || len(results) != 1 || !strings.HasSuffix(results[0].String(), "exists, as configured") {
			t.Errorf("a second run: %v, %v", results, err)
		}
	})
	t.Run("no broker", func(t *testing.T) {
		_, err := newAdmin(t, &kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}}).EnsureTopics(context.Background(), []kafkaconn.Topic{cases[0].topic})
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("got %v", err)
		}
	})
}
