// Package record is the unit that flows through a pipeline: a Kafka record as consumed,
// its decoded body, and where it came from.
package record

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header is a Kafka record header: franz-go's own type, so that records go to and from the
// client without a copy of their headers.
type Header = kgo.RecordHeader

// Record is one record in flight. Stages may change Msg, Key and Headers; Value keeps the
// bytes as consumed so that a failure can dead-letter the original.
type Record struct {
	Key []byte
	// Value is the body as consumed. It is never written in place: a JSON decode stage's
	// strings and Raw fields share its bytes (record.Decoder), so a stage that changes the
	// body sets Msg, or a new Value.
	Value     []byte
	Headers   []Header
	Timestamp time.Time
	Topic     string
	Partition int32
	Offset    int64

	// Msg is the decoded body. Before a decode stage it is nil and expressions see the raw
	// bytes; a decode stage sets it (a map for JSON objects, a string for text; nil for a
	// tombstone, a null value).
	Msg any
	// Decoded reports that a decode stage has run, so sinks re-encode Msg instead of
	// writing Value unchanged.
	Decoded bool

	// OrigKey and OrigHeaders are the key and headers as consumed, for the dead-letter queue;
	// stages replace Key and Headers rather than change them in place.
	OrigKey     []byte
	OrigHeaders []Header

	// Track counts this record's outstanding copies; shared by the copies of a fan-out.
	Track *Tracker

	// Tick marks no record but the passing of time on a partition (Topic, Partition): the
	// engine hands ticks to the stages that close windows by the clock (an aggregate's
	// idle_close), and to no other.
	Tick bool
}

// Tombstone reports whether the record has no body: it was consumed with a null value (a
// delete, on a compacted topic) and no stage has given it one since. Sinks write it with a
// null value, and stages that set or merge fields leave it as it is.
func (r *Record) Tombstone() bool { return r.Value == nil && r.Msg == nil }

// Header returns the value of the last header named key.
func (r *Record) Header(key string) ([]byte, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// Clone copies r deeply enough that the copy's Msg, Key and Headers can change
// without touching r (branch fan-out hands one copy to each route).
func (r *Record) Clone() *Record {
	c := *r
	c.Headers = append([]Header(nil), r.Headers...)
	c.Msg = DeepCopy(r.Msg)
	return &c
}

// DeepCopy copies the maps and slices of a decoded body; scalars are shared.
func DeepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = DeepCopy(x)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = DeepCopy(x)
		}
		return s
	case *Object:
		return t.Copy()
	}
	return v
}

// ToBytes renders a computed key or header value: strings and bytes as they are, nil as
// nil, anything else in its default text form.
func ToBytes(v any) []byte {
	switch t := v.(type) {
	case nil:
		return nil
	case string:
		return []byte(t)
	case []byte:
		return t
	}
	return fmt.Append(nil, v)
}
