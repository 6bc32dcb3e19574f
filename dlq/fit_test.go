package dlq

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// weight counts a message as sizes on the wire do, simply enough to check by hand: each byte
// of the key, the value and the headers once, a prefix per header and a fixed overhead. (The
// sinks' weight, which both Kafka clients agree with, is tested with Fit in sinks.)
func weight(m *kafkaio.Message) int {
	n := 20 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 2 + len(h.Key) + len(h.Value)
	}
	return n
}

func header(m *kafkaio.Message, name string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == name {
			return string(h.Value), true
		}
	}
	return "", false
}

// Fit cuts the value, then the record's own headers, then the key, no more than it must,
// and says so; the format's headers stay.
func TestFit(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 5000)
	reason := kafkaio.Header{Key: HeaderError, Value: []byte("too large")}
	const limit = 2000
	cases := []struct {
		name   string
		msg    *kafkaio.Message
		cut    Cut
		key    int  // the key's length after
		value  int  // the value's length after; -1: null
		others int  // the record's own headers left
		over   bool // the format's headers alone weigh more than the limit
	}{
		{"small enough stays", &kafkaio.Message{Key: []byte("k"), Value: []byte("v"), Headers: []kafkaio.Header{{Key: "trace", Value: []byte("t")}, reason}},
			Uncut, 1, 1, 1, false},
		{"the value is cut to the limit", &kafkaio.Message{Key: []byte("k"), Value: big, Headers: []kafkaio.Header{{Key: "trace", Value: []byte("t")}, reason}},
			CutValue, 1, limit - (20 + 1 + 2 + 5 + 1 + 2 + len(HeaderError) + 9 + 2 + len(HeaderTruncated) + 5 + 2 + len(HeaderOriginalBytes) + 4), 1, false},
		{"then the record's own headers go", &kafkaio.Message{Key: []byte("k"), Value: []byte("v"), Headers: []kafkaio.Header{{Key: "trace", Value: big}, reason}},
			CutHeaders, 1, -1, 0, false},
		{"then the key is cut", &kafkaio.Message{Key: big, Value: []byte("v"), Headers: []kafkaio.Header{reason}},
			CutKey, limit - (20 + 2 + len(HeaderError) + 9 + 2 + len(HeaderTruncated) + 17 + 2 + len(HeaderOriginalBytes) + 4), -1, 0, false},
		{"a tombstone has no value to cut", &kafkaio.Message{Key: big, Headers: []kafkaio.Header{reason}},
			CutKey, limit - (20 + 2 + len(HeaderError) + 9 + 2 + len(HeaderTruncated) + 17 + 2 + len(HeaderOriginalBytes) + 4), -1, 0, false},
		{"no key to cut: as small as it gets", &kafkaio.Message{Value: big, Headers: []kafkaio.Header{{Key: HeaderError, Value: big}}},
			CutHeaders, 0, -1, 0, true},
		{"a key cut to nothing when the format's headers alone are over", &kafkaio.Message{Key: []byte("k"), Value: big, Headers: []kafkaio.Header{{Key: HeaderError, Value: big}}},
			CutKey, 0, -1, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			own := append([]kafkaio.Header(nil), c.msg.Headers...)
			passed := c.msg.Headers
			before := weight(c.msg)
			Fit(c.msg, limit, weight)
			got, _ := header(c.msg, HeaderTruncated)
			if got != c.cut.String() {
				t.Fatalf("%s %q, want %q", HeaderTruncated, got, c.cut)
			}
			if size := weight(c.msg); (size > limit) != c.over {
				t.Fatalf("%d bytes after fitting, limit %d (over it: %v)", size, limit, c.over)
			}
			if n, _ := header(c.msg, HeaderOriginalBytes); c.cut != Uncut && n != fmt.Sprint(before) {
				t.Errorf("%s %q, want %d", HeaderOriginalBytes, n, before)
			}
			if len(c.msg.Key) != c.key || (c.value < 0) != (c.msg.Value == nil) || (c.value >= 0 && len(c.msg.Value) != c.value) {
				t.Errorf("key %d bytes, value %d bytes (null %v); want %d, %d", len(c.msg.Key), len(c.msg.Value), c.msg.Value == nil, c.key, c.value)
			}
			others := 0
			for _, h := range c.msg.Headers {
				if !IsHeader(h.Key) {
					others++
				}
			}
			if others != c.others {
				t.Errorf("%d of the record's own headers left, want %d", others, c.others)
			}
			if _, ok := header(c.msg, HeaderError); !ok {
				t.Error("the reason was cut")
			}
			for i := range own { // the record's headers are the record's: Fit works on a copy
				if passed[i].Key != own[i].Key || !bytes.Equal(passed[i].Value, own[i].Value) {
					t.Fatalf("the headers passed in were changed: %v", passed)
				}
			}
		})
	}
}
