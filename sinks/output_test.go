package sinks

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

func TestPartitionForMatchesSarama(t *testing.T) {
	hp := sarama.NewHashPartitioner("t")
	for i := range 1000 {
		key := fmt.Appendf(nil, "key-%d", i)
		want, _ := hp.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(key)}, 7)
		if got := PartitionFor(key, 7); got != want {
			t.Fatalf("key %s: partition %d, sarama's hash partitioner %d", key, got, want)
		}
	}
}

func TestAllowed(t *testing.T) {
	cases := []struct {
		name     string
		patterns []string
		topic    string
		want     bool
	}{
		{"no list allows all", nil, "x", true},
		{"a name", []string{"orders-eu"}, "orders-eu", true},
		{"a pattern", []string{"orders-*"}, "orders-eu", true},
		{"outside the pattern", []string{"orders-*"}, "payments", false},
		{"one of several", []string{"a", "b-*"}, "b-1", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Allowed(c.patterns, c.topic); got != c.want {
				t.Errorf("Allowed(%v, %q) = %v", c.patterns, c.topic, got)
			}
		})
	}
}

func TestFitDLQ(t *testing.T) {
	header := func(m *kafkaio.Message, k string) string {
		for _, h := range m.Headers {
			if h.Key == k {
				return string(h.Value)
			}
		}
		return ""
	}
	big := make([]byte, 5000)
	cases := []struct {
		name string
		msg  *kafkaio.Message
		cut  string
	}{
		{"small enough stays", &kafkaio.Message{Value: []byte("v")}, ""},
		{"the value is cut", &kafkaio.Message{Key: []byte("k"), Value: big,
			Headers: []kafkaio.Header{{Key: "trace", Value: []byte("t")}, {Key: "pythia.error", Value: []byte("too large")}}}, "value"},
		{"then the original headers go", &kafkaio.Message{Value: []byte("v"),
			Headers: []kafkaio.Header{{Key: "trace", Value: big}, {Key: "pythia.error", Value: []byte("too large")}}}, "value,headers"},
		{"then the key is cut", &kafkaio.Message{Key: big, Value: []byte("v")}, "value,headers,key"},
		{"a tombstone has no value to cut", &kafkaio.Message{Key: big}, "value,headers,key"},
	}
	const limit = 2000
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := wireSize(c.msg)
			dlq.Fit(c.msg, limit, wireSize)
			if size := wireSize(c.msg); size > limit {
				t.Fatalf("%d bytes after fitting, limit %d", size, limit)
			}
			if got := header(c.msg, "pythia.truncated"); got != c.cut {
				t.Fatalf("pythia.truncated %q, want %q", got, c.cut)
			}
			if c.cut != "" && header(c.msg, "pythia.original_bytes") != fmt.Sprint(before) {
				t.Errorf("pythia.original_bytes %q, want %d", header(c.msg, "pythia.original_bytes"), before)
			}
			if c.cut == "value" && header(c.msg, "pythia.error") == "" {
				t.Error("the reason was cut")
			}
		})
	}
}
