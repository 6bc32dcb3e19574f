package sinks

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// Rules are the rules of the topics a run's sinks write (kafkaio.TopicRules), each looked
// up once and shared by every sink: the records breaking one are dead-lettered before they
// are written, and under exactly_once the producer holds each topic's batches to its
// max.message.bytes. A broker refusing a record for its own reason fails the batch it is in,
// which in a transaction costs an abort: better not to send it.
type Rules struct {
	lookup func(topic string) (kafkaio.TopicRules, bool)

	mu    sync.RWMutex // read for every record written
	known map[string]kafkaio.TopicRules
	tried map[string]bool // looked up, found or not: never again
}

// NewRules starts from the rules already known (the topics the file names, read at start)
// and looks up others with lookup, which reports false when it cannot read them.
func NewRules(known map[string]kafkaio.TopicRules, lookup func(topic string) (kafkaio.TopicRules, bool)) *Rules {
	r := &Rules{lookup: lookup, known: map[string]kafkaio.TopicRules{}, tried: map[string]bool{}}
	for t, tr := range known {
		r.known[t], r.tried[t] = tr, true
	}
	return r
}

// Of returns topic's rules, looking them up the first time; false when they cannot be read.
// A nil Rules knows none (tests and dev without a Kafka).
func (r *Rules) Of(topic string) (kafkaio.TopicRules, bool) {
	if r == nil {
		return kafkaio.TopicRules{}, false
	}
	r.mu.RLock()
	tr, ok := r.known[topic]
	tried := r.tried[topic]
	r.mu.RUnlock()
	if ok || tried || r.lookup == nil {
		return tr, ok
	}
	tr, ok = r.lookup(topic)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tried[topic] = true
	if ok {
		r.known[topic] = tr
	}
	return tr, ok
}

// BatchLimit is the largest batch the producer may write to topic: def, or the topic's
// max.message.bytes when lower (or when def is 0). It never looks up: the sink has before it
// writes.
func (r *Rules) BatchLimit(topic string, def int) int {
	if r == nil {
		return def
	}
	r.mu.RLock()
	tr, ok := r.known[topic]
	r.mu.RUnlock()
	if ok && tr.MaxBytes > 0 && (tr.MaxBytes < def || def == 0) {
		return tr.MaxBytes
	}
	return def
}

// batchOverhead is what a record batch of one record weighs besides the record, as franz-go
// counts it against a batch limit (the batch header, its length prefix and a margin for the
// request's encoding); Kafka counts 61 bytes of it against max.message.bytes.
const batchOverhead = 70

// wireSize is what msg weighs alone in a batch: the limit a topic's max.message.bytes sets
// applies to it (before compression, as the producer counts). sarama (kafka.client: sarama)
// checks an estimate of its own, which counts every varint at its longest: the larger of the
// two is kept, so that neither client refuses a record that passed.
func wireSize(msg *kafkaio.Message) int {
	body := 1 + 1 + 1 // attributes, timestamp delta, offset delta: 0 for a batch's first record
	body += bytesLen(msg.Key) + bytesLen(msg.Value) + varintLen(int64(len(msg.Headers)))
	longest := saramaRecordOverhead + len(msg.Key) + len(msg.Value)
	for _, h := range msg.Headers {
		body += bytesLen([]byte(h.Key)) + bytesLen(h.Value)
		longest += len(h.Key) + len(h.Value) + 2*binary.MaxVarintLen32
	}
	return max(batchOverhead+varintLen(int64(body))+body, longest)
}

// saramaRecordOverhead is what sarama counts a record's own fields at (its
// maximumRecordOverhead: five varints and a varlong at their longest, and the attributes).
const saramaRecordOverhead = 5*binary.MaxVarintLen32 + binary.MaxVarintLen64 + 1

// bytesLen is the length of a varint-prefixed byte string on the wire (-1 for null).
func bytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

// varintLen is the length of a zig-zag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// RuleError is a record its topic's rules refuse: a compacted topic needs a key, a
// timestamp outside what the topic takes.
type RuleError struct {
	Topic  string
	Reason string
}

func (e *RuleError) Error() string { return "topic " + e.Topic + " refuses the record: " + e.Reason }

// RecordFault marks the error as its record's fault.
func (*RuleError) RecordFault() {}

// checkRules is the RuleError of msg under tr, nil when the topic takes it (size aside).
func checkRules(msg *kafkaio.Message, tr kafkaio.TopicRules, now time.Time) error {
	if tr.Compacted && msg.Key == nil {
		return &RuleError{Topic: msg.Topic, Reason: "it is compacted (cleanup.policy compact) and the record has no key"}
	}
	if !tr.CreateTime || msg.Timestamp.IsZero() {
		return nil
	}
	switch ts := msg.Timestamp; {
	case tr.Before > 0 && ts.Before(now.Add(-tr.Before)):
		return &RuleError{Topic: msg.Topic, Reason: fmt.Sprintf("its timestamp %s is more than %v in the past (message.timestamp.before.max.ms)",
			ts.UTC().Format(time.RFC3339), tr.Before)}
	case tr.After > 0 && ts.After(now.Add(tr.After)):
		return &RuleError{Topic: msg.Topic, Reason: fmt.Sprintf("its timestamp %s is more than %v in the future (message.timestamp.after.max.ms)",
			ts.UTC().Format(time.RFC3339), tr.After)}
	}
	return nil
}
