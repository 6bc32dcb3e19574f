package kafkaconn

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/IBM/sarama"

	"github.com/pythia-pipe/pythia-pipe/spec"
)

// CreateField is the `create` block of a source, sink or DLQ: how `pythia-pipe topics create`
// makes the topic.
var CreateField = spec.Object("create", "Topic settings used by `pythia-pipe topics create`.",
	spec.Int("partitions", "Partitions of the topic.").WithDefault("1").AtLeast(1).AtMost(100000),
	spec.Int("replication_factor", "Replicas of each partition.").WithDefault("1").AtLeast(1).AtMost(32),
	spec.Duration("retention", "How long records are kept (retention.ms); leave out for the broker default."),
	spec.Enum("cleanup_policy", "delete old segments, compact by key, or both.", "delete", "compact", "compact,delete").WithDefault("delete"),
	spec.Enum("compression", "Topic compression.type.", "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
	spec.Size("max_message_bytes", "The largest record batch the topic accepts (max.message.bytes)."),
	spec.Map("configs", "Other topic configs, by their Kafka name.", spec.String("value", "The config value.")),
)

// Topic is a topic as a pipeline wants it.
type Topic struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string // Kafka config names
}

// TopicFromValue reads a `create` block for topic name.
func TopicFromValue(name string, v *spec.Value) Topic {
	t := Topic{Name: name, Partitions: int32(v.Int("partitions")), ReplicationFactor: int16(v.Int("replication_factor")),
		Configs: map[string]string{"cleanup.policy": v.String("cleanup_policy")}}
	if v.Has("retention") {
		t.Configs["retention.ms"] = strconv.FormatInt(v.Duration("retention").Milliseconds(), 10)
	}
	if v.Has("compression") {
		t.Configs["compression.type"] = v.String("compression")
	}
	if v.Has("max_message_bytes") {
		t.Configs["max.message.bytes"] = strconv.FormatInt(v.Int("max_message_bytes"), 10)
	}
	for _, e := range v.Get("configs").Entries {
		t.Configs[e.Key] = e.Value.Str
	}
	return t
}

// TopicResult says what EnsureTopics did for one topic.
type TopicResult struct {
	Topic
	Created bool
	Diffs   []string // how an existing topic differs from the wanted one ("partitions 1, want 3")
}

func (r TopicResult) String() string {
	switch {
	case r.Created:
		return fmt.Sprintf("topic %s: created (%d partitions, replication factor %d%s)", r.Name, r.Partitions, r.ReplicationFactor, configText(r.Configs))
	case len(r.Diffs) > 0:
		return fmt.Sprintf("topic %s: exists, but differs from the file: %s (left as it is)", r.Name, strings.Join(r.Diffs, "; "))
	}
	return fmt.Sprintf("topic %s: exists, as configured", r.Name)
}

func configText(c map[string]string) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+c[k])
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

// EnsureTopics creates the topics that do not exist and compares the others with what is
// wanted; it never changes an existing topic, so running it twice changes nothing.
func (c *Config) EnsureTopics(sc *sarama.Config, topics []Topic) ([]TopicResult, error) {
	if err := c.Check(sc, nil); err != nil {
		return nil, err
	}
	admin, err := sarama.NewClusterAdmin(c.Brokers, sc)
	if err != nil {
		return nil, c.explain(err)
	}
	defer admin.Close()
	existing, err := admin.ListTopics()
	if err != nil {
		return nil, c.explain(err)
	}
	var out []TopicResult
	for _, t := range topics {
		r := TopicResult{Topic: t}
		detail, exists := existing[t.Name]
		if !exists {
			entries := map[string]*string{}
			for k, v := range t.Configs {
				entries[k] = &v
			}
			err := admin.CreateTopic(t.Name, &sarama.TopicDetail{NumPartitions: t.Partitions, ReplicationFactor: t.ReplicationFactor, ConfigEntries: entries}, false)
			var te *sarama.TopicError
			switch {
			case errors.As(err, &te) && te.Err == sarama.ErrTopicAlreadyExists:
			case err != nil:
				return out, fmt.Errorf("creating topic %s: %w", t.Name, err)
			default:
				r.Created = true
			}
			out = append(out, r)
			continue
		}
		if detail.NumPartitions != t.Partitions {
			r.Diffs = append(r.Diffs, fmt.Sprintf("partitions %d, want %d", detail.NumPartitions, t.Partitions))
		}
		if detail.ReplicationFactor != t.ReplicationFactor {
			r.Diffs = append(r.Diffs, fmt.Sprintf("replication factor %d, want %d", detail.ReplicationFactor, t.ReplicationFactor))
		}
		have, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: t.Name})
		if err != nil {
			return out, fmt.Errorf("describing topic %s: %w", t.Name, err)
		}
		values := map[string]string{}
		for _, e := range have {
			values[e.Name] = e.Value
		}
		keys := make([]string, 0, len(t.Configs))
		for k := range t.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if values[k] != t.Configs[k] {
				r.Diffs = append(r.Diffs, fmt.Sprintf("%s=%s, want %s", k, values[k], t.Configs[k]))
			}
		}
		out = append(out, r)
	}
	return out, nil
}
