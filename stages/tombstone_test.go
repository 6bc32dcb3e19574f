package stages_test

import (
	"errors"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

func tombstone() *record.Record {
	return &record.Record{Key: []byte("k1"), Topic: "in"}
}

// decode's on_null: a null value passes (msg nil, written null), is dropped, or is
// dead-lettered, whatever the format; an empty value is not null.
func TestDecodeOnNull(t *testing.T) {
	cases := []struct {
		name, stage string
		value       []byte
		out         int    // records out
		err         bool   // a DecodeError wrapping ErrNullValue
		encoded     []byte // what a sink writes (nil: a null value)
	}{
		{"json passes by default", `{name: d, type: decode, schema: {id: int}}`, nil, 1, false, nil},
		{"text passes by default", `{name: d, type: decode, format: text}`, nil, 1, false, nil},
		{"bytes passes by default", `{name: d, type: decode, format: bytes}`, nil, 1, false, nil},
		{"drop", `{name: d, type: decode, on_null: drop}`, nil, 0, false, nil},
		{"dlq", `{name: d, type: decode, format: text, on_null: dlq}`, nil, 0, true, nil},
		{"empty text is not null", `{name: d, type: decode, format: text, on_null: dlq}`, []byte{}, 1, false, []byte{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := build(t, "  - "+c.stage+"\n")
			rec := tombstone()
			rec.Value = c.value
			outs, err := runRecord(t, p, rec, "d")
			var de *stages.DecodeError
			if c.err {
				if !errors.As(err, &de) || !errors.Is(err, stages.ErrNullValue) {
					t.Fatalf("want a DecodeError wrapping ErrNullValue, got %v", err)
				}
				return
			}
			if err != nil || len(outs) != c.out {
				t.Fatalf("got %d records, %v; want %d", len(outs), err, c.out)
			}
			if c.out == 0 {
				return
			}
			got := outs[0].Rec
			if c.value == nil && (got.Msg != nil || !got.Tombstone()) {
				t.Fatalf("msg = %#v, want nil (a tombstone)", got.Msg)
			}
			encodings := []string{""}
			if c.value == nil { // a tombstone is written null whatever the sink's encoding
				encodings = append(encodings, "json", "text", "bytes")
			}
			for _, enc := range encodings {
				b, err := sinks.Encode(got, enc)
				if err != nil || (b == nil) != (c.encoded == nil) || string(b) != string(c.encoded) {
					t.Errorf("encode %q: %q (nil %v), %v; want %q (nil %v)", enc, b, b == nil, err, c.encoded, c.encoded == nil)
				}
			}
		})
	}
}

// What stages after decode do with a tombstone: conditions see msg == nil, set and drop
// leave it a tombstone, value may give it a body, an enrich lets it by without a lookup.
func TestTombstoneThroughStages(t *testing.T) {
	p := build(t, `  - {name: d, type: decode, schema: {id: int, amount: float}}
  - {name: live, type: filter, when: msg != nil}
  - {name: safe, type: filter, when: msg == nil || msg.amount > 0}
  - {name: careless, type: filter, when: msg.amount > 0}
  - {name: shape, type: map, set: {cents: msg.amount * 100}, drop: [id], key: '"out-" + key'}
  - {name: soft, type: map, value: 'msg == nil ? {"deleted": key} : msg', set: {seen: true}}
  - {name: tier, type: enrich, expr: '{"tier": msg.amount > 10}', merge: true, on_missing: dlq}
`)
	cases := []struct {
		name   string
		stages []string
		out    int
		err    bool
		body   string // JSON, or "" for a tombstone
		key    string
	}{
		{"a filter can drop tombstones", []string{"d", "live"}, 0, false, "", ""},
		{"a nil-safe filter keeps them", []string{"d", "safe"}, 1, false, "", "k1"},
		{"a careless filter fails on them", []string{"d", "careless"}, 0, true, "", ""},
		{"set and drop leave a tombstone; key is computed", []string{"d", "shape"}, 1, false, "", "out-k1"},
		{"value gives it a body on purpose", []string{"d", "soft"}, 1, false, `{"deleted":"k1","seen":true}`, "k1"},
		{"enrich lets it by", []string{"d", "tier"}, 1, false, "", "k1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs, err := runRecord(t, p, tombstone(), c.stages...)
			if c.err {
				if err == nil {
					t.Fatalf("want an error, got %d records", len(outs))
				}
				return
			}
			if err != nil || len(outs) != c.out {
				t.Fatalf("got %d records, %v; want %d", len(outs), err, c.out)
			}
			if c.out == 0 {
				return
			}
			rec := outs[0].Rec
			b, err := sinks.Encode(rec, "")
			if err != nil || (c.body == "") != (b == nil) || (c.body != "" && string(b) != c.body) {
				t.Errorf("written %q (nil %v), %v; want %q", b, b == nil, err, c.body)
			}
			if string(rec.Key) != c.key {
				t.Errorf("key %q, want %q", rec.Key, c.key)
			}
		})
	}
}
