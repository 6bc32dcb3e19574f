package kafkaconn

import (
	"strconv"

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
