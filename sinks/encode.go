package sinks

import (
	"fmt"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// Encode renders a record's body for writing. A record no decode stage touched is written
// as consumed; a decoded body follows enc (json, text, bytes), or by default its kind: JSON
// for objects and lists, text for strings, bytes as they are. A tombstone is nil whatever
// enc says (not "null", not ""), so that it is written with a null value and still deletes.
func Encode(rec *record.Record, enc string) ([]byte, error) {
	if !rec.Decoded || rec.Tombstone() {
		return rec.Value, nil
	}
	switch enc {
	case "text":
		switch v := rec.Msg.(type) {
		case string:
			return []byte(v), nil
		case []byte:
			return v, nil
		case nil:
			return nil, nil
		}
		return fmt.Append(nil, record.Plain(rec.Msg)), nil
	case "bytes":
		switch v := rec.Msg.(type) {
		case []byte:
			return v, nil
		case string:
			return []byte(v), nil
		}
		return nil, &EncodeError{What: "body", Err: fmt.Errorf("encode: bytes needs a bytes or string body, got %T", record.Plain(rec.Msg))}
	case "":
		switch v := rec.Msg.(type) {
		case []byte:
			return v, nil
		case string:
			return []byte(v), nil
		}
	}
	b, err := record.AppendJSON(make([]byte, 0, len(rec.Value)+64), rec.Msg)
	if err != nil {
		return nil, &EncodeError{What: "body", Err: err}
	}
	return b, nil
}
