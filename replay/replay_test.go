package replay

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func dlqRecord(headers ...string) *sarama.ConsumerMessage {
	m := &sarama.ConsumerMessage{Topic: "orders-dlq", Key: []byte("c1"), Value: []byte(`{"amount": "12"}`), Timestamp: time.Unix(1700000000, 0)}
	for i := 0; i+1 < len(headers); i += 2 {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: []byte(headers[i]), Value: []byte(headers[i+1])})
	}
	return m
}

var failed = []string{"trace", "t-1", "pythia.error", "decode json: amount: expected float, got a string", "pythia.stage", "parse",
	"pythia.source.topic", "orders", "pythia.source.partition", "2", "pythia.failed_at", "2026-11-26T10:00:00Z"}

// A dead-lettered record goes back as the source had it, to where it was read, counted as
// replayed once more; what cannot or should not go back is skipped, saying why.
func TestMessage(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		rec  *sarama.ConsumerMessage
		why  skip
	}{
		{"replayed", Options{MaxReplays: 1}, dlqRecord(failed...), write},
		{"by stage", Options{MaxReplays: 1, Stage: "parse"}, dlqRecord(failed...), write},
		{"another stage", Options{MaxReplays: 1, Stage: "valid"}, dlqRecord(failed...), filtered},
		{"by error text", Options{MaxReplays: 1, Error: "expected float"}, dlqRecord(failed...), write},
		{"another error", Options{MaxReplays: 1, Error: "timeout"}, dlqRecord(failed...), filtered},
		{"failed since", Options{MaxReplays: 1, Since: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}, dlqRecord(failed...), write},
		{"failed before since", Options{MaxReplays: 1, Since: time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)}, dlqRecord(failed...), filtered},
		{"failed at until", Options{MaxReplays: 1, Until: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}, dlqRecord(failed...), filtered},
		{"failed again after a replay", Options{MaxReplays: 1}, dlqRecord(append(failed, "pythia.replayed", "1")...), replayedBefore},
		{"allowed a second replay", Options{MaxReplays: 2}, dlqRecord(append(failed, "pythia.replayed", "1")...), write},
		{"cut short by the DLQ", Options{MaxReplays: 1}, dlqRecord(append(failed, "pythia.truncated", "value")...), truncated},
		{"not from a pipeline", Options{MaxReplays: 1}, dlqRecord("trace", "t-1"), alien},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Replayer{opts: c.opts, partitions: func(string) ([]int32, error) { return []int32{0, 1, 2}, nil }}
			msg, why := r.message(c.rec)
			if why != c.why {
				t.Fatalf("skip %d, want %d", why, c.why)
			}
			if why != write {
				return
			}
			headers := map[string]string{}
			for _, h := range msg.Headers {
				headers[string(h.Key)] = string(h.Value)
			}
			key, _ := msg.Key.Encode()
			if msg.Topic != "orders" || msg.Partition != 2 || string(key) != "c1" || headers["trace"] != "t-1" || headers["pythia.error"] != "" || len(headers) != 2 {
				t.Fatalf("got %s/%d key %s headers %v", msg.Topic, msg.Partition, key, headers)
			}
			before := 0
			for _, h := range c.rec.Headers {
				if string(h.Key) == "pythia.replayed" {
					before = int(h.Value[0] - '0')
				}
			}
			if want := string(rune('1' + before)); headers["pythia.replayed"] != want {
				t.Fatalf("pythia.replayed %q, want %s", headers["pythia.replayed"], want)
			}
		})
	}
}

// A partition the topic no longer has: the key's hash picks one.
func TestMessageToAPartitionGone(t *testing.T) {
	r := &Replayer{opts: Options{MaxReplays: 1}, partitions: func(string) ([]int32, error) { return []int32{0}, nil }}
	msg, why := r.message(dlqRecord(failed...))
	if why != write || msg.Partition != -1 {
		t.Fatalf("partition %d, skip %d", msg.Partition, why)
	}
	p, err := Partitioner("orders").Partition(msg, 1)
	if err != nil || p != 0 {
		t.Fatalf("partitioned to %d, %v", p, err)
	}
}
