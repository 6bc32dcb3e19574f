package engine

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

// keepPipeline decodes under an open schema, keeps tombstones past a filter, and computes
// a field that can divide by zero.
const keepPipeline = `version: 1
name: keep
kafka: {brokers: "${KAFKA_BROKERS:-localhost:9092}"}
source: {type: kafka, topics: [keep-in]}
stages:
  - {name: parse, type: decode, schema: {"*": any}}
  - {name: live, type: filter, when: 'msg == nil || msg.skip != true'}
  - {name: price, type: map, set: {ratio: msg.a / msg.b}, key: 'key ?? "none"'}
sinks: [{name: out, type: kafka, topic: keep-out}]
dlq: {type: kafka, topic: keep-dlq}
`

// Records pass through the engine as they came unless a stage changes them, and a stage that
// fails one is the one blamed.
func TestEngineRecordsPassUnchanged(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := mustParse(t, keepPipeline)
	cases := []struct {
		name       string
		key, value []byte
		sink       string // out, dlq, or "" when dropped
		written    string // what the sink writes; "<null>" for a null value
		outKey     string
		stage, why string // the DLQ's pythia.stage and pythia.error
	}{
		{"tombstone", []byte("del-1"), nil, "out", "<null>", "del-1", "", ""},
		{"numbers as written", []byte("n"), []byte(`{"id": 12345678901234567890, "n": 9007199254740993, "min": -9223372036854775808, "x": 0.1, "a": 1, "b": 2}`),
			"out", `{"a":1,"b":2,"id":12345678901234567890,"min":-9223372036854775808,"n":9007199254740993,"ratio":0.5,"x":0.1}`, "n", "", ""},
		{"null key", nil, []byte(`{"a": 1, "b": 4}`), "out", `{"a":1,"b":4,"ratio":0.25}`, "none", "", ""},
		{"division by zero blamed on the map", []byte("z"), []byte(`{"a": 1, "b": 0}`), "dlq", `{"a": 1, "b": 0}`, "z", "price",
			`set ratio: expression "msg.a / msg.b" computed +Inf (a division by zero?)`},
		{"not UTF-8", []byte("u"), []byte("{\"a\": \"\xff\"}"), "dlq", "{\"a\": \"\xff\"}", "u", "parse", "decode json: invalid UTF-8 at byte 7"},
		{"filtered", []byte("s"), []byte(`{"skip": true}`), "", "", "", "", ""},
	}
	var recs []*record.Record
	for i, c := range cases {
		recs = append(recs, &record.Record{Key: c.key, Value: c.value, Topic: "keep-in", Offset: int64(i), Timestamp: time.Unix(1700000000, 0)})
	}
	out, ms, _, err := runMemory(t, p, recs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, twice := ms.Settled(); n != len(cases) || twice {
		t.Fatalf("settled %d of %d (twice %v)", n, len(cases), twice)
	}
	got := map[int64]*record.Record{}
	where := map[int64]string{}
	for _, sink := range []string{"out", "dlq"} {
		for _, r := range out.Records(sink) {
			got[r.Offset], where[r.Offset] = r, sink
		}
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := got[int64(i)]
			if where[int64(i)] != c.sink {
				t.Fatalf("went to %q, want %q", where[int64(i)], c.sink)
			}
			if c.sink == "" {
				return
			}
			b, err := sinks.Encode(r, "")
			if c.written == "<null>" && (b != nil || err != nil) {
				t.Fatalf("written %q, %v; want a null value", b, err)
			}
			if c.written != "<null>" && (string(b) != c.written || err != nil) {
				t.Fatalf("written %s, %v; want %s", b, err, c.written)
			}
			if string(r.Key) != c.outKey {
				t.Errorf("key %q, want %q", r.Key, c.outKey)
			}
			stage, _ := r.Header("pythia.stage")
			why, _ := r.Header("pythia.error")
			if string(stage) != c.stage || string(why) != c.why {
				t.Errorf("pythia.stage %q, pythia.error %q; want %q, %q", stage, why, c.stage, c.why)
			}
		})
	}
}

// A tombstone goes through decode, filter and map on the in-process broker and is written
// with a null value (a delete, still); numbers come out digit for digit.
func TestKafkaTombstoneAndNumbers(t *testing.T) {
	b := startBroker(t, 1, "keep-in", "keep-out", "keep-dlq")
	feed := []devbroker.Record{
		{Key: []byte("del-1"), Value: nil},
		{Key: []byte("n"), Value: []byte(`{"id": 12345678901234567890, "a": 9007199254740993, "b": 1}`)},
		{Key: []byte("empty"), Value: []byte(`{"a": 1, "b": 1, "s": ""}`)},
		{Key: []byte("blank"), Value: []byte{}}, // not JSON: dead-lettered as it came, empty and not null
	}
	if err := b.Produce(context.Background(), "keep-in", feed); err != nil {
		t.Fatal(err)
	}
	runSource(t, b, "keep.yaml", []byte(keepPipeline), nil, t.TempDir())
	outs, dlq := mustRead(t, b, "keep-out"), mustRead(t, b, "keep-dlq")
	if len(outs) != 3 || len(dlq) != 1 {
		t.Fatalf("out %d dlq %d; want 3 1", len(outs), len(dlq))
	}
	if dlq[0].Value == nil || len(dlq[0].Value) != 0 {
		t.Errorf("an empty value came back as %#v: null and empty must stay apart", dlq[0].Value)
	}
	want := map[string]string{"del-1": "<null>", "n": `{"a":9007199254740993,"b":1,"id":12345678901234567890,"ratio":9007199254740992}`,
		"empty": `{"a":1,"b":1,"ratio":1,"s":""}`}
	for _, r := range outs {
		w, ok := want[string(r.Key)]
		switch {
		case !ok:
			t.Errorf("unexpected key %q", r.Key)
		case w == "<null>" && r.Value != nil:
			t.Errorf("tombstone %q written with value %q, not null", r.Key, r.Value)
		case w != "<null>" && string(r.Value) != w:
			t.Errorf("%s: written %s, want %s", r.Key, r.Value, w)
		}
	}
}
