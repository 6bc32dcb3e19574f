package codec

import "fmt"

// SchemaError is a schema that does not parse or compile (a local file, or one the registry
// holds), or a writer's schema that cannot be read as the reader's.
type SchemaError struct {
	Format string // avro, protobuf
	Err    error
}

func (e *SchemaError) Error() string { return fmt.Sprintf("%s schema: %v", e.Format, e.Err) }
func (e *SchemaError) Unwrap() error { return e.Err }

// DataError is a body that does not decode, or a value that does not fit its schema: the
// record's fault. Field is the dotted path of the field that failed, when known.
type DataError struct {
	Format string
	Field  string
	Err    error
}

func (e *DataError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("field %s: %v", e.Field, e.Err)
	}
	return e.Err.Error()
}
func (e *DataError) Unwrap() error { return e.Err }

// RecordFault marks the error as its record's fault (see failure.RecordFault).
func (*DataError) RecordFault() {}
