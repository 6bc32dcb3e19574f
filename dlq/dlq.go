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
	headers := make([]record.Header, len(rec.OrigHeaders), len(rec.OrigHeaders)+9)
	copy(headers, rec.OrigHeaders)
	// The values are written one after another in one buffer, and each header takes its own
	// out of it as it is written: one allocation for the nine (a bad record on a hot path is
	// common). Should the buffer grow, the values before stay where they were, unchanged.
	vals := make([]byte, 0, len(f.Reason)+len(f.Stage)+len(f.Pipeline)+len(rec.Topic)+2*len(timeFormat)+40)
	start := 0
	add := func(name string) {
		headers = append(headers, record.Header{Key: name, Value: vals[start:len(vals):len(vals)]})
		start = len(vals)
	}
	vals = append(vals, f.Reason...)
	add(HeaderError)
	vals = append(vals, f.Stage...)
	add(HeaderStage)
	vals = append(vals, f.Pipeline...)
	add(HeaderPipeline)
	vals = append(vals, rec.Topic...)
	add(HeaderSourceTopic)
	vals = strconv.AppendInt(vals, int64(rec.Partition), 10)
	add(HeaderSourcePartition)
	vals = strconv.AppendInt(vals, rec.Offset, 10)
	add(HeaderSourceOffset)
	vals = rec.Timestamp.UTC().AppendFormat(vals, timeFormat)
	add(HeaderSourceTimestamp)
	vals = strconv.AppendInt(vals, int64(max(f.Attempts, 1)), 10) // a record that failed was tried once at least
	add(HeaderAttempts)
	vals = f.At.UTC().AppendFormat(vals, timeFormat)
	add(HeaderFailedAt)
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
