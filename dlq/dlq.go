// Package dlq is the format of a dead-letter record: the record as consumed plus pythia.*
// headers saying where it came from and why it failed. It owns every header name, builds the
// DLQ record of a failed record (Record), cuts one too large for its topic (Fit) and reads
// the headers back (Decode). The sinks write what it builds, dlq replay decides by what it
// decodes, dev and `pythia-pipe test` show and compare it: no other package spells a header.
package dlq

import (
	"strconv"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// The headers of a DLQ record. Every one starts with Prefix, which is how a header of the
// format is told from the record's own (replay drops them, Fit keeps them).
const (
	Prefix = "pythia."

	HeaderError           = "pythia.error"    // why: the error and its likely cause
	HeaderStage           = "pythia.stage"    // the stage (or sink) that failed
	HeaderPipeline        = "pythia.pipeline" // the pipeline's name
	HeaderSourceTopic     = "pythia.source.topic"
	HeaderSourcePartition = "pythia.source.partition"
	HeaderSourceOffset    = "pythia.source.offset"
	HeaderSourceTimestamp = "pythia.source.timestamp" // RFC 3339, UTC, to the nanosecond
	HeaderAttempts        = "pythia.attempts"         // 1, or what a retry spent
	HeaderFailedAt        = "pythia.failed_at"        // RFC 3339, UTC, to the nanosecond
	// HeaderReplayed counts the replays of a record: dlq replay writes it on what it writes
	// back, so that a record failing again after one is known.
	HeaderReplayed = "pythia.replayed"
	// HeaderTruncated says what Fit cut off (Cut); HeaderOriginalBytes what the record
	// weighed before.
	HeaderTruncated     = "pythia.truncated"
	HeaderOriginalBytes = "pythia.original_bytes"
)

// IsHeader reports whether a header of that name is one of the format's rather than the
// record's own.
func IsHeader(name string) bool { return strings.HasPrefix(name, Prefix) }

// timeFormat is how the format writes times: a reader in any language parses RFC 3339.
const timeFormat = time.RFC3339Nano

// Failure says why a record is dead-lettered.
type Failure struct {
	Pipeline string
	Stage    string // the stage (or sink) that failed
	Reason   string // why: the error and its likely cause (pythia.error)
	Attempts int
	At       time.Time
}

// Record builds the dead-letter record of rec: the record as consumed — key, value,
// headers — plus the format's headers saying where it came from and why it failed. It shares
// rec's tracker, so that its acknowledgement completes rec. It can be replayed as is.
func Record(rec *record.Record, f Failure) *record.Record {
	headers := make([]record.Header, 0, len(rec.OrigHeaders)+9)
	headers = append(headers, rec.OrigHeaders...)
	attempts := max(f.Attempts, 1) // a record that failed was tried once at least
	for _, h := range [...][2]string{
		{HeaderError, f.Reason},
		{HeaderStage, f.Stage},
		{HeaderPipeline, f.Pipeline},
		{HeaderSourceTopic, rec.Topic},
		{HeaderSourcePartition, strconv.Itoa(int(rec.Partition))},
		{HeaderSourceOffset, strconv.FormatInt(rec.Offset, 10)},
		{HeaderSourceTimestamp, rec.Timestamp.UTC().Format(timeFormat)},
		{HeaderAttempts, strconv.Itoa(attempts)},
		{HeaderFailedAt, f.At.UTC().Format(timeFormat)},
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
