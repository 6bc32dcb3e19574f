package dlq

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// Info is what a DLQ record's headers say about it.
type Info struct {
	Source  Source  // where the record was read
	Failure Failure // why it was dead-lettered
	// Replayed is how often dlq replay wrote the record back before it failed this time.
	Replayed int
	// Truncated is what Fit cut off; OriginalBytes what the record weighed before (0 when
	// nothing was cut).
	Truncated     Cut
	OriginalBytes int
}

// Source is where a dead-lettered record was read. Partition and Offset are -1 when a
// header does not say (missing, or not a number): 0 is a partition and an offset.
type Source struct {
	Topic     string // "": not a pipeline's DLQ record
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// Cut is what Fit cut off a record too large for its DLQ, in the order it cuts: the value,
// then the record's own headers, then the key.
type Cut int

const (
	Uncut      Cut = iota
	CutValue       // the value, shortened or dropped
	CutHeaders     // the value and the record's own headers
	CutKey         // the value, the record's own headers, and the key shortened
	// CutUnknown is a pythia.truncated that is none of the above: something was cut, and the
	// record is not what was consumed.
	CutUnknown
)

// String is the cut as pythia.truncated writes it ("" for none).
func (c Cut) String() string {
	switch c {
	case Uncut:
		return ""
	case CutValue:
		return "value"
	case CutHeaders:
		return "value,headers"
	case CutKey:
		return "value,headers,key"
	}
	return "unknown"
}

// MalformedError is a header of the format whose value cannot be read.
type MalformedError struct {
	Name, Value string
	Want        string // what the value should be
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("%s: %q is not %s", e.Name, e.Value, e.Want)
}

// Decode reads the format's headers among headers; the others are ignored. A header that is
// missing leaves its field zero (Partition and Offset -1); one whose value cannot be read
// does too, and is named in the error, a *MalformedError for each (errors.Join): a DLQ record
// anyone could have written is read as far as it can be. Of two headers of one name the last
// wins: a record dead-lettered again carries its source's pythia.* headers before the new
// ones.
func Decode(headers []record.Header) (Info, error) {
	info := Info{Source: Source{Partition: -1, Offset: -1}}
	var d decoder
	for _, h := range headers {
		if !IsHeader(h.Key) {
			continue
		}
		name, v := h.Key, string(h.Value)
		switch name {
		case HeaderError:
			info.Failure.Reason = v
		case HeaderStage:
			info.Failure.Stage = v
		case HeaderPipeline:
			info.Failure.Pipeline = v
		case HeaderSourceTopic:
			info.Source.Topic = v
		case HeaderSourcePartition:
			info.Source.Partition = int32(d.number(name, v, 32, "a partition number"))
		case HeaderSourceOffset:
			info.Source.Offset = d.number(name, v, 64, "an offset")
		case HeaderSourceTimestamp:
			info.Source.Timestamp = d.time(name, v)
		case HeaderFailedAt:
			info.Failure.At = d.time(name, v)
		case HeaderAttempts:
			info.Failure.Attempts = d.count(name, v)
		case HeaderReplayed:
			info.Replayed = d.count(name, v)
		case HeaderOriginalBytes:
			info.OriginalBytes = d.count(name, v)
		case HeaderTruncated:
			info.Truncated = d.cut(name, v)
		}
	}
	return info, errors.Join(d.errs...)
}

// decoder reads header values, keeping what it could not read.
type decoder struct{ errs []error }

func (d *decoder) bad(name, value, want string) {
	d.errs = append(d.errs, &MalformedError{Name: name, Value: value, Want: want})
}

// number reads a partition or an offset: 0 or more, within bits; -1 when it is not one.
func (d *decoder) number(name, v string, bits int, want string) int64 {
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil || n < 0 {
		d.bad(name, v, want)
		return -1
	}
	return n
}

// count reads a count: a whole number, 0 or more; 0 when it is not one.
func (d *decoder) count(name, v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		d.bad(name, v, "a count")
		return 0
	}
	return n
}

// time reads an RFC 3339 time; zero when it is not one.
func (d *decoder) time(name, v string) time.Time {
	t, err := time.Parse(timeFormat, v)
	if err != nil {
		d.bad(name, v, "an RFC 3339 time")
		return time.Time{}
	}
	return t
}

// cut reads pythia.truncated: empty is no cut, as when the header is not there.
func (d *decoder) cut(name, v string) Cut {
	for c := Uncut; c < CutUnknown; c++ {
		if v == c.String() {
			return c
		}
	}
	d.bad(name, v, `"value", "value,headers" or "value,headers,key"`)
	return CutUnknown
}
