package sinks

import (
	"fmt"

	"github.com/pythia-pipe/pythia-pipe/expr"
)

// Target is what a Kafka sink writes: a topic (or an expression computing it, with the
// patterns it must match), the key (an expression, or the record's key) and the body
// encoding. The DLQ truncates a record too large for it rather than refuse it.
type Target struct {
	Name      string
	Topic     string
	TopicExpr *expr.Program
	Allow     []string
	Key       *expr.Program
	Encode    string
	Schema    *SchemaEncoder // encode avro, protobuf
	DLQ       bool
	// SamePartition writes each record to the partition it was read from (a changelog: a
	// store is an input partition's), not by its key.
	SamePartition bool
	// PartitionBy, when set, picks each record's partition by the hash of what it computes
	// instead of the key, which is kept (a repartition topic: records meet by a stage's key).
	PartitionBy *expr.Program
}

// TooLargeError is a record larger than its topic takes.
type TooLargeError struct {
	Topic        string
	Bytes, Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the record is %d bytes, more than the %d topic %s takes (max_message_bytes, or the topic's max.message.bytes)", e.Bytes, e.Limit, e.Topic)
}

// RecordFault marks the error as its record's fault.
func (*TooLargeError) RecordFault() {}

// EncodeError is a record whose output could not be computed (key, topic or body).
type EncodeError struct {
	What string
	Err  error
}

func (e *EncodeError) Error() string { return fmt.Sprintf("computing the %s: %v", e.What, e.Err) }
func (e *EncodeError) Unwrap() error { return e.Err }

// RecordFault marks the error as its record's fault.
func (*EncodeError) RecordFault() {}
