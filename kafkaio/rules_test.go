package kafkaio

import (
	"testing"
	"time"
)

// A topic's config values, as DescribeConfigs gives them, read as its rules.
func TestRulesOf(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]string
		want   TopicRules
	}{
		{"defaults of Kafka 4", map[string]string{"max.message.bytes": "1048588", "cleanup.policy": "delete", "message.timestamp.type": "CreateTime",
			"message.timestamp.before.max.ms": "9223372036854775807", "message.timestamp.after.max.ms": "3600000"},
			TopicRules{MaxBytes: 1048588, CreateTime: true, After: time.Hour}},
		{"compacted and deleted", map[string]string{"cleanup.policy": "compact,delete"}, TopicRules{Compacted: true, CreateTime: true}},
		{"log append time", map[string]string{"message.timestamp.type": "LogAppendTime", "message.timestamp.before.max.ms": "1000"},
			TopicRules{Before: time.Second}},
		{"the older difference bounds both sides", map[string]string{"message.timestamp.difference.max.ms": "60000"},
			TopicRules{CreateTime: true, Before: time.Minute, After: time.Minute}},
		{"unless the newer ones are set", map[string]string{"message.timestamp.difference.max.ms": "60000", "message.timestamp.after.max.ms": "1000"},
			TopicRules{CreateTime: true, Before: time.Minute, After: time.Second}},
		{"nonsense is no rule", map[string]string{"max.message.bytes": "-1", "message.timestamp.before.max.ms": "soon"}, TopicRules{CreateTime: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := rulesOf(c.values); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
