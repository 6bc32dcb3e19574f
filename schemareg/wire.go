package schemareg

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
)

// The Confluent wire format: a zero magic byte, the schema id as a big-endian uint32, for
// Protobuf the indexes of the message in its file's declarations (varints: a count, then
// the indexes; a single 0 for the first message), then the payload.
var header sr.ConfluentHeader

// maxIndexes bounds the message indexes a record may claim (nesting depth of the message):
// a corrupt count must not allocate much.
const maxIndexes = 64

// Append appends the header of a record framed for schema id (and, for Protobuf, the
// message's indexes; nil for Avro) to dst.
func Append(dst []byte, id int, indexes []int) []byte {
	b, _ := header.AppendEncode(dst, id, indexes) // its error is always nil
	return b
}

// Split reads the header of a framed record: the schema id and the payload after it.
func Split(b []byte) (id int, payload []byte, err error) {
	id, payload, err = header.DecodeID(b)
	if err != nil {
		return 0, nil, &FrameError{Err: headerProblem(b)}
	}
	return id, payload, nil
}

// SplitIndexes reads the Protobuf message indexes at the start of payload (after Split).
func SplitIndexes(payload []byte) (indexes []int, rest []byte, err error) {
	indexes, rest, err = header.DecodeIndex(payload, maxIndexes)
	if err != nil {
		return nil, nil, &FrameError{Err: fmt.Errorf("the Protobuf message indexes do not read: %w", indexProblem(err))}
	}
	for _, i := range indexes {
		if i < 0 {
			return nil, nil, &FrameError{Err: fmt.Errorf("a Protobuf message index is negative (%d)", i)}
		}
	}
	return indexes, rest, nil
}

func headerProblem(b []byte) error {
	switch {
	case len(b) == 0:
		return errors.New("the value is empty, not framed for a schema registry")
	case b[0] != 0:
		return fmt.Errorf("the value does not start with the registry's magic byte 0 (it starts with 0x%02x): not framed for a schema registry", b[0])
	}
	return fmt.Errorf("the value is %d bytes, too short for the registry's 5-byte header", len(b))
}

func indexProblem(err error) error {
	if errors.Is(err, sr.ErrNotRegistered) {
		return fmt.Errorf("more than %d of them", maxIndexes)
	}
	if errors.Is(err, sr.ErrBadHeader) {
		return errors.New("a negative count")
	}
	return errors.New("the bytes end inside them")
}

// FrameError is a record not in the wire format: its own fault.
type FrameError struct{ Err error }

func (e *FrameError) Error() string { return e.Err.Error() }
func (e *FrameError) Unwrap() error { return e.Err }

// RecordFault marks the error as its record's fault (see failure.RecordFault).
func (*FrameError) RecordFault() {}
