package sinks

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// A record as large as wireSize lets it be is taken by franz-go under that batch limit and
// by the broker under that max.message.bytes: checking wireSize before writing leaves
// neither to refuse it.
func TestWireSizeFitsTheLimits(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cases := []struct {
		name    string
		key     []byte
		value   []byte
		headers int
	}{
		{"small", []byte("k"), []byte("v"), 0},
		{"no key", nil, bytes.Repeat([]byte("v"), 700), 0},
		{"a tombstone", []byte("k"), nil, 0},
		{"varints of two bytes", bytes.Repeat([]byte("k"), 200), bytes.Repeat([]byte("v"), 3000), 3},
		{"varints of three bytes", []byte("k"), bytes.Repeat([]byte("v"), 40000), 9},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := &kafkaio.Message{Topic: "t" + strconv.Itoa(i), Key: tc.key, Value: tc.value}
			for h := range tc.headers {
				msg.Headers = append(msg.Headers, kafkaio.Header{Key: "pythia.h" + strconv.Itoa(h), Value: []byte("some value")})
			}
			limit := wireSize(msg)
			if err := c.CreateTopic(msg.Topic, 1, map[string]string{"max.message.bytes": strconv.Itoa(limit)}); err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchMaxBytes(int32(max(limit, 512))),
				kgo.ProducerBatchCompression(kgo.NoCompression()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r := &kgo.Record{Topic: msg.Topic, Key: msg.Key, Value: msg.Value}
			for _, h := range msg.Headers {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("a record of wireSize %d refused under that limit: %v", limit, err)
			}
		})
	}
}

// A topic's configs say what it takes; the records that break them are refused before they
// are written, naming the topic and the rule.
func TestTopicRules(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	hour := time.Hour
	cases := []struct {
		name  string
		rules kafkaio.TopicRules
		key   []byte
		ts    time.Time
		want  string // "" when taken
	}{
		{"nothing to say", kafkaio.TopicRules{}, nil, now.Add(-1000 * hour), ""},
		{"a compacted topic takes keyed records", kafkaio.TopicRules{Compacted: true}, []byte("k"), now, ""},
		{"a compacted topic needs a key", kafkaio.TopicRules{Compacted: true}, nil, now, "compacted"},
		{"too old for the topic", kafkaio.TopicRules{CreateTime: true, Before: 24 * hour}, []byte("k"), now.Add(-25 * hour), "in the past"},
		{"old enough", kafkaio.TopicRules{CreateTime: true, Before: 24 * hour}, []byte("k"), now.Add(-23 * hour), ""},
		{"too far ahead", kafkaio.TopicRules{CreateTime: true, After: hour}, []byte("k"), now.Add(2 * hour), "in the future"},
		{"the broker's clock counts with LogAppendTime", kafkaio.TopicRules{Before: hour}, []byte("k"), now.Add(-2 * hour), ""},
		{"no timestamp: the producer's clock", kafkaio.TopicRules{CreateTime: true, Before: hour}, []byte("k"), time.Time{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := &kafkaio.Message{Topic: "t", Timestamp: c.ts, Key: c.key}
			err := checkRules(msg, c.rules, now)
			if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if _, fault := err.(interface{ RecordFault() }); err != nil && !fault {
				t.Fatalf("%v is not the record's fault", err)
			}
		})
	}
}

// Rules are looked up once per topic, found or not; the batch limit never looks up.
func TestRulesLookedUpOnce(t *testing.T) {
	asked := map[string]int{}
	r := NewRules(map[string]kafkaio.TopicRules{"named": {MaxBytes: 4096}}, func(topic string) (kafkaio.TopicRules, bool) {
		asked[topic]++
		return kafkaio.TopicRules{MaxBytes: 2048}, topic == "computed"
	})
	if got := r.BatchLimit("computed", 1<<20); got != 1<<20 {
		t.Errorf("batch limit of a topic not looked up yet: %d, want the default", got)
	}
	for range 3 {
		r.Of("named")
		r.Of("computed")
		r.Of("denied")
	}
	if asked["named"] != 0 || asked["computed"] != 1 || asked["denied"] != 1 {
		t.Errorf("looked up %v; want named never, the others once", asked)
	}
	if a, b := r.BatchLimit("named", 1<<20), r.BatchLimit("computed", 1<<20); a != 4096 || b != 2048 {
		t.Errorf("batch limits %d and %d, want 4096 and 2048", a, b)
	}
	if got := r.BatchLimit("named", 1000); got != 1000 {
		t.Errorf("batch limit above the producer's: %d", got)
	}
}
