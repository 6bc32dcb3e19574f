package replay

import (
	"strconv"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

func dlqRecord(headers ...string) *kafkaio.Message {
	m := &kafkaio.Message{Topic: "orders-dlq", Key: []byte("c1"), Value: []byte(`{"amount": "12"}`), Timestamp: time.Unix(1700000000, 0)}
	for i := 0; i+1 < len(headers); i += 2 {
		m.Headers = append(m.Headers, kafkaio.Header{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return m
}

var failed = []string{"trace", "t-1", dlq.HeaderError, "decode json: amount: expected float, got a string", dlq.HeaderStage, "parse",
	dlq.HeaderSourceTopic, "orders", dlq.HeaderSourcePartition, "2", dlq.HeaderFailedAt, "2026-11-26T10:00:00Z"}

// with is failed with the headers given changed or added.
func with(headers ...string) []string {
	out := append([]string(nil), failed...)
	for i := 0; i+1 < len(headers); i += 2 {
		found := false
		for j := 0; j+1 < len(out); j += 2 {
			if out[j] == headers[i] {
				out[j+1], found = headers[i+1], true
			}
		}
		if !found {
			out = append(out, headers[i], headers[i+1])
		}
	}
	return out
}

// A dead-lettered record goes back as the source had it, to where it was read, counted as
// replayed once more; what cannot or should not go back is skipped or refused, saying why.
func TestMessage(t *testing.T) {
	sources := map[string]int32{"orders": 3, "orders-eu": 3}
	cases := []struct {
		name    string
		opts    Options
		targets map[string]int32
		rec     *kafkaio.Message
		why     skip
		topic   string // where it goes, when written
	}{
		{"replayed", Options{MaxReplays: 1}, sources, dlqRecord(failed...), write, "orders"},
		{"from another source topic", Options{MaxReplays: 1}, sources, dlqRecord(with(dlq.HeaderSourceTopic, "orders-eu")...), write, "orders-eu"},
		{"by stage", Options{MaxReplays: 1, Stage: "parse"}, sources, dlqRecord(failed...), write, "orders"},
		{"another stage", Options{MaxReplays: 1, Stage: "valid"}, sources, dlqRecord(failed...), filtered, ""},
		{"by error text", Options{MaxReplays: 1, Error: "expected float"}, sources, dlqRecord(failed...), write, "orders"},
		{"another error", Options{MaxReplays: 1, Error: "timeout"}, sources, dlqRecord(failed...), filtered, ""},
		{"failed since", Options{MaxReplays: 1, Since: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}, sources, dlqRecord(failed...), write, "orders"},
		{"failed before since", Options{MaxReplays: 1, Since: time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)}, sources, dlqRecord(failed...), filtered, ""},
		{"failed at until", Options{MaxReplays: 1, Until: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}, sources, dlqRecord(failed...), filtered, ""},
		{"failed again after a replay", Options{MaxReplays: 1}, sources, dlqRecord(with(dlq.HeaderReplayed, "1")...), replayedBefore, ""},
		{"allowed a second replay", Options{MaxReplays: 2}, sources, dlqRecord(with(dlq.HeaderReplayed, "1")...), write, "orders"},
		{"cut short by the DLQ", Options{MaxReplays: 1}, sources, dlqRecord(with(dlq.HeaderTruncated, "value")...), truncated, ""},
		{"not from a pipeline", Options{MaxReplays: 1}, sources, dlqRecord("trace", "t-1"), alien, ""},
		{"not from a pipeline, with --to", Options{MaxReplays: 1, To: "orders-fixed"}, map[string]int32{"orders-fixed": 3}, dlqRecord("trace", "t-1"), alien, ""},
		{"forged: a topic the pipeline does not read", Options{MaxReplays: 1}, sources, dlqRecord(with(dlq.HeaderSourceTopic, "payments")...), refused, ""},
		{"forged, filtered out too", Options{MaxReplays: 1, Stage: "valid"}, sources, dlqRecord(with(dlq.HeaderSourceTopic, "payments")...), refused, ""},
		{"forged, cut short too", Options{MaxReplays: 1}, sources, dlqRecord(with(dlq.HeaderSourceTopic, "payments", dlq.HeaderTruncated, "value")...), refused, ""},
		{"a topic the pipeline does not read, with --to", Options{MaxReplays: 1, To: "orders-fixed"}, map[string]int32{"orders-fixed": 3}, dlqRecord(with(dlq.HeaderSourceTopic, "payments")...), write, "orders-fixed"},
		{"a source topic, with --to elsewhere", Options{MaxReplays: 1, To: "orders-fixed"}, map[string]int32{"orders-fixed": 3}, dlqRecord(failed...), write, "orders-fixed"},
		{"a replay count that is not a number counts as none", Options{MaxReplays: 1}, sources, dlqRecord(with(dlq.HeaderReplayed, "once")...), write, "orders"},
		{"a failure time that is not a time matches no --since", Options{MaxReplays: 1, Since: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}, sources,
			dlqRecord(with(dlq.HeaderFailedAt, "yesterday")...), filtered, ""},
		{"an unknown cut is still cut short", Options{MaxReplays: 1}, sources, dlqRecord(with(dlq.HeaderTruncated, "all")...), truncated, ""},
		{"two source topics: the last counts", Options{MaxReplays: 1}, sources, dlqRecord(append(with(), dlq.HeaderSourceTopic, "payments")...), refused, ""},
		{"--to still filters", Options{MaxReplays: 1, To: "orders-fixed", Stage: "valid"}, map[string]int32{"orders-fixed": 3}, dlqRecord(failed...), filtered, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &decider{opts: c.opts, targets: c.targets}
			msg, why := d.message(c.rec)
			if why != c.why {
				t.Fatalf("skip %d, want %d", why, c.why)
			}
			if why != write {
				if msg != nil {
					t.Fatalf("skipped, but would write %+v", msg)
				}
				return
			}
			headers := map[string]string{}
			for _, h := range msg.Headers {
				headers[h.Key] = string(h.Value)
			}
			if msg.Topic != c.topic || msg.Partition != 2 || string(msg.Key) != "c1" || string(msg.Value) != `{"amount": "12"}` || !msg.Timestamp.Equal(c.rec.Timestamp) ||
				headers["trace"] != "t-1" || headers[dlq.HeaderError] != "" || len(headers) != 2 {
				t.Fatalf("got %s/%d key %s value %s at %v, headers %v", msg.Topic, msg.Partition, msg.Key, msg.Value, msg.Timestamp, headers)
			}
			before := 0
			for _, h := range c.rec.Headers {
				if h.Key == dlq.HeaderReplayed {
					before, _ = strconv.Atoi(string(h.Value)) // not a number: none
				}
			}
			if want := string(rune('1' + before)); headers[dlq.HeaderReplayed] != want {
				t.Fatalf("%s %q, want %s", dlq.HeaderReplayed, headers[dlq.HeaderReplayed], want)
			}
		})
	}
}

// A partition the topic no longer has (or a header that names none): the key's hash picks
// one, as sarama's hash partitioner did.
func TestMessagePartition(t *testing.T) {
	cases := []struct {
		name      string
		partition string
		n         int32
		want      int32
	}{
		{"the partition it was read from", "2", 3, 2},
		{"a partition gone", "2", 2, sinks.PartitionFor([]byte("c1"), 2)},
		{"no partition", "", 5, sinks.PartitionFor([]byte("c1"), 5)},
		{"not a number", "two", 5, sinks.PartitionFor([]byte("c1"), 5)},
		{"negative", "-1", 5, sinks.PartitionFor([]byte("c1"), 5)},
		{"beyond int32", "4294967298", 5, sinks.PartitionFor([]byte("c1"), 5)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &decider{opts: Options{MaxReplays: 1}, targets: map[string]int32{"orders": c.n}}
			msg, why := d.message(dlqRecord(with(dlq.HeaderSourcePartition, c.partition)...))
			if why != write || msg.Partition != c.want {
				t.Fatalf("partition %d (skip %d), want %d", msg.Partition, why, c.want)
			}
		})
	}
}

// A refusal names the topic the record's last pythia.source.topic names: the one the
// decision was made on.
func TestSourceTopic(t *testing.T) {
	forged := dlqRecord(append(with(), dlq.HeaderSourceTopic, "payments")...)
	if got := sourceTopic(forged); got != "payments" {
		t.Fatalf("refused for %q, want payments", got)
	}
	if got := sourceTopic(dlqRecord("trace", "t-1")); got != "" {
		t.Fatalf("a record not from a pipeline names %q", got)
	}
}

// The summary names the refused records, and says how to write them anyway only when there
// are some.
func TestStatsString(t *testing.T) {
	if s := (Stats{Read: 3, Replayed: 2, Refused: 1}).String(); s != "read 3, replayed 2; skipped: 0 not matching, 0 failed again after a replay, 0 cut short by the DLQ, 0 not from a pipeline (no pythia.source.topic); refused: 1 from a topic the pipeline does not read (--to TOPIC writes every replayed record to TOPIC)" {
		t.Fatal(s)
	}
	if s := (Stats{Read: 2, Replayed: 2}).String(); s != "read 2, replayed 2; skipped: 0 not matching, 0 failed again after a replay, 0 cut short by the DLQ, 0 not from a pipeline (no pythia.source.topic); refused: 0 from a topic the pipeline does not read" {
		t.Fatal(s)
	}
}
