package sinks

import (
	"strconv"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// Failure says why a record is dead-lettered.
type Failure struct {
	Pipeline string
	Stage    string // the stage (or sink) that failed
	Err      error
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
		{"pythia.error", f.Err.Error()},
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
