package dlq

import (
	"strconv"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// Weight is what a message weighs against a topic's limit. Fit relies on two things of it,
// which sizes on the wire have: cutting n bytes off the value or the key lowers it by n at
// least (each byte counts once; a length prefix only shrinks), and dropping a header does not
// raise it.
type Weight func(*kafkaio.Message) int

// Fit shrinks a dead-letter message to limit bytes, as weight counts them, rather than let it
// be refused: first its value is cut, then the record's own headers go (the format's say
// why it failed), then the key is cut. HeaderTruncated says what was cut (Cut) and
// HeaderOriginalBytes how much the message weighed. A message that fits stays as it is; one
// whose format headers alone weigh more than limit is left as small as Fit can make it.
//
// The caller gives the weight it checks the limit with, so that what Fit leaves passes that
// check: the sinks' counts what both Kafka clients count, which is theirs to know.
func Fit(msg *kafkaio.Message, limit int, weight Weight) {
	size := weight(msg)
	if size <= limit {
		return
	}
	msg.Headers = append(msg.Headers[:len(msg.Headers):len(msg.Headers)], // a copy: the record's stay as they are
		kafkaio.Header{Key: HeaderTruncated, Value: []byte(CutValue.String())},
		kafkaio.Header{Key: HeaderOriginalBytes, Value: []byte(strconv.Itoa(size))})
	over := func() int { return weight(msg) - limit }
	if n := len(msg.Value) - over(); msg.Value != nil && n >= 0 { // nil for a tombstone
		msg.Value = msg.Value[:n]
		return
	}
	msg.Value = nil
	var kept []kafkaio.Header // the format's headers say why; the record's own may go
	for _, h := range msg.Headers {
		if IsHeader(h.Key) {
			kept = append(kept, h)
		}
	}
	msg.Headers = kept
	truncated := &msg.Headers[len(kept)-2] // the two appended above are last, and kept
	truncated.Value = []byte(CutHeaders.String())
	if over() <= 0 || msg.Key == nil {
		return
	}
	truncated.Value = []byte(CutKey.String())
	msg.Key = msg.Key[:max(len(msg.Key)-over(), 0)]
}
