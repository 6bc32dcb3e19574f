package sinks

import (
	"strconv"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// Failure says why a record is dead-lettered.
type Failure struct {
	Pipeline string
	Stage    string // the stage (or sink) that failed
	Reason   string // why: the error and its likely cause
	Attempts int
	At       time.Time
}

// DLQRecord builds the dead-letter record of rec: the record as consumed — key, value,
// headers — plus pythia.* headers saying where it came from and why it failed. It shares
// rec's tracker, so that its acknowledgement completes rec. It can be replayed as is.
func DLQRecord(rec *record.Record, f Failure) *record.Record {
	headers := make([]record.Header, 0, len(rec.OrigHeaders)+9)
	headers = append(headers, rec.OrigHeaders...)
	attempts := f.Attempts
	if attempts < 1 {
		attempts = 1
	}
	for _, h := range [...][2]string{
		{"pythia.error", f.Reason},
		{"pythia.stage", f.Stage},
		{"pythia.pipeline", f.Pipeline},
		{"pythia.source.topic", rec.Topic},
		{"pythia.source.partition", strconv.Itoa(int(rec.Partition))},
		{"pythia.source.offset", strconv.FormatInt(rec.Offset, 10)},
		{"pythia.source.timestamp", rec.Timestamp.UTC().Format(time.RFC3339Nano)},
		{"pythia.attempts", strconv.Itoa(attempts)},
		{"pythia.failed_at", f.At.UTC().Format(time.RFC3339Nano)},
	} {
		headers = append(headers, record.Header{Key: h[0], Value: []byte(h[1])})
	}
	return &record.Record{
		Key:       rec.OrigKey,
		Value:     rec.Value,
		Headers:   headers,
		Timestamp: rec.Timestamp,
		Topic:     rec.Topic,
		Partition: rec.Partition,
		Offset:    rec.Offset,
		OrigKey:   rec.OrigKey,
		Track:     rec.Track,
	}
}

// fitDLQ shrinks a dead-letter message to limit bytes (as wireSize counts them) rather than
// let it be refused: first its value is cut, then the original headers go, then the key is
// cut. Headers say what was cut and how large the record was.
func fitDLQ(msg *kafkaio.Message, limit int) {
	size := wireSize(msg)
	if size <= limit {
		return
	}
	msg.Headers = append(msg.Headers[:len(msg.Headers):len(msg.Headers)], // a copy: the record's stay as they are
		kafkaio.Header{Key: "pythia.truncated", Value: []byte("value")},
		kafkaio.Header{Key: "pythia.original_bytes", Value: []byte(strconv.Itoa(size))})
	over := func() int { return wireSize(msg) - limit }
	if n := len(msg.Value) - over(); msg.Value != nil && n >= 0 { // nil for a tombstone
		msg.Value = msg.Value[:n]
		return
	}
	msg.Value = nil
	var kept []kafkaio.Header // the pythia.* headers say why; the original ones may go
	for _, h := range msg.Headers {
		if strings.HasPrefix(h.Key, "pythia.") {
			kept = append(kept, h)
		}
	}
	msg.Headers = kept
	msg.Headers[len(kept)-2].Value = []byte("value,headers")
	if over() <= 0 || msg.Key == nil {
		return
	}
	msg.Headers[len(kept)-2].Value = []byte("value,headers,key")
	msg.Key = msg.Key[:max(len(msg.Key)-over(), 0)]
}
