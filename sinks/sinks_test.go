package sinks

import (
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
)

func TestEncode(t *testing.T) {
	cases := []struct {
		name string
		rec  record.Record
		enc  string
		want string
		err  bool
	}{
		{"untouched record keeps its bytes", record.Record{Value: []byte(`{"a": 1}`), Msg: map[string]any{"a": 2}}, "", `{"a": 1}`, false},
		{"decoded object as JSON", record.Record{Decoded: true, Msg: map[string]any{"b": 1, "a": "x"}}, "", `{"a":"x","b":1}`, false},
		{"string body as text", record.Record{Decoded: true, Msg: "hello"}, "", "hello", false},
		{"string body as JSON", record.Record{Decoded: true, Msg: "hello"}, "json", `"hello"`, false},
		{"number as text", record.Record{Decoded: true, Msg: 42}, "text", "42", false},
		{"object as bytes fails", record.Record{Decoded: true, Msg: map[string]any{}}, "bytes", "", true},
		{"time in JSON", record.Record{Decoded: true, Msg: map[string]any{"t": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}, "json", `{"t":"2026-01-02T03:04:05Z"}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Encode(&c.rec, c.enc)
			if (err != nil) != c.err || (!c.err && string(got) != c.want) {
				t.Errorf("got %q, %v; want %q (error %v)", got, err, c.want, c.err)
			}
		})
	}
}

func TestDLQRecord(t *testing.T) {
	tr := record.NewTracker(nopSettler{}, 0)
	in := &record.Record{Key: []byte("changed"), OrigKey: []byte("k"), Value: []byte("raw"), Topic: "orders", Partition: 2, Offset: 41,
		Timestamp: time.UnixMilli(1700000000000), Headers: []record.Header{{Key: "new", Value: nil}},
		OrigHeaders: []record.Header{{Key: "trace", Value: []byte("t1")}}, Track: tr}
	d := DLQRecord(in, Failure{Pipeline: "p", Stage: "parse", Reason: "bad json", Attempts: 3, At: time.Unix(1800000000, 0)})
	if string(d.Key) != "k" || string(d.Value) != "raw" || d.Track != tr || d.Decoded {
		t.Fatalf("not the original record: %+v", d)
	}
	want := map[string]string{"trace": "t1", "pythia.error": "bad json", "pythia.stage": "parse", "pythia.pipeline": "p",
		"pythia.source.topic": "orders", "pythia.source.partition": "2", "pythia.source.offset": "41",
		"pythia.source.timestamp": "2023-11-14T22:13:20Z", "pythia.attempts": "3", "pythia.failed_at": "2027-01-15T08:00:00Z"}
	for k, v := range want {
		if got, ok := d.Header(k); !ok || string(got) != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if _, ok := d.Header("new"); ok {
		t.Error("a header a stage added leaked into the DLQ record")
	}
}

type nopSettler struct{}

func (nopSettler) Settle(uint64) {}
