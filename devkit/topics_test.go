package devkit

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"slices"
	"testing"
	"time"
)

// What Produce writes, Read returns: a null value (a tombstone) or key stays null, apart from
// an empty one, and headers and timestamps come back as written. dev's feed relies on it.
func TestProduceAndReadKeepRecords(t *testing.T) {
	b := started(t, "t", 1)
	at := time.UnixMilli(1700000000123)
	cases := []struct {
		name string
		rec  Record
	}{
		{"a key, a value and headers", Record{Key: []byte("k1"), Value: []byte(`{"a":1}`), Headers: map[string]string{"a": "1", "b": "2"}, Timestamp: at}},
		{"a null value", Record{Key: []byte("k2"), Value: nil, Timestamp: at}},
		{"an empty value", Record{Key: []byte("k3"), Value: []byte{}, Timestamp: at}},
		{"a null key", Record{Key: nil, Value: []byte("v"), Timestamp: at}},
		{"an empty key", Record{Key: []byte{}, Value: []byte("v"), Timestamp: at}},
	}
	recs := make([]Record, len(cases))
	for i, c := range cases {
		recs[i] = c.rec
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Produce(ctx, "t", recs); err != nil {
		t.Fatal(err)
	}
	got, err := b.Read(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(cases) {
		t.Fatalf("read %d records, want %d", len(got), len(cases))
	}
	slices.SortFunc(got, func(a, b Record) int { return cmp.Compare(a.Offset, b.Offset) }) // one partition
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := got[i]
			if (g.Key == nil) != (c.rec.Key == nil) || !bytes.Equal(g.Key, c.rec.Key) {
				t.Errorf("key %q (nil: %v), want %q (nil: %v)", g.Key, g.Key == nil, c.rec.Key, c.rec.Key == nil)
			}
			if (g.Value == nil) != (c.rec.Value == nil) || !bytes.Equal(g.Value, c.rec.Value) {
				t.Errorf("value %q (nil: %v), want %q (nil: %v)", g.Value, g.Value == nil, c.rec.Value, c.rec.Value == nil)
			}
			if !maps.Equal(g.Headers, c.rec.Headers) {
				t.Errorf("headers %v, want %v", g.Headers, c.rec.Headers)
			}
			if !g.Timestamp.Equal(at) {
				t.Errorf("timestamp %v, want %v", g.Timestamp, at)
			}
		})
	}
}
