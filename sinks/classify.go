package sinks

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// Class is what a produce failure means for the pipeline.
type Class int

const (
	// Retryable failures pass: leader changes, timeouts, a broker down, too few replicas.
	// The sink retries them with backoff for as long as it runs; the record stays unacknowledged.
	Retryable Class = iota
	// RecordFailure is a problem of this record alone (too large, corrupt): it goes to the DLQ.
	RecordFailure
	// Fatal failures will not pass by waiting (no authorization, no such topic): the pipeline
	// stops and commits nothing past the record.
	Fatal
)

// Classify is the one place that decides what a produce error means.
func Classify(err error) Class {
	var kerr sarama.KError
	if errors.As(err, &kerr) {
		switch kerr {
		case sarama.ErrMessageSizeTooLarge, sarama.ErrInvalidMessage, sarama.ErrInvalidMessageSize,
			sarama.ErrInvalidRecord, sarama.ErrInvalidTimestamp:
			return RecordFailure
		case sarama.ErrTopicAuthorizationFailed, sarama.ErrClusterAuthorizationFailed,
			sarama.ErrTransactionalIDAuthorizationFailed, sarama.ErrSASLAuthenticationFailed,
			sarama.ErrUnknownTopicOrPartition, sarama.ErrInvalidTopic, sarama.ErrInvalidRequiredAcks,
			sarama.ErrUnsupportedVersion, sarama.ErrUnsupportedForMessageFormat, sarama.ErrPolicyViolation:
			return Fatal
		}
		return Retryable
	}
	var enc *EncodeError
	if errors.As(err, &enc) {
		return RecordFailure
	}
	return Retryable
}

// RecordError is a record this sink cannot write; the engine dead-letters it.
type RecordError struct {
	Sink string
	Err  error
}

func (e *RecordError) Error() string { return fmt.Sprintf("sink %s: %v", e.Sink, e.Err) }
func (e *RecordError) Unwrap() error { return e.Err }

// FatalError stops the pipeline.
type FatalError struct {
	Sink  string
	Topic string
	Err   error
}

func (e *FatalError) Error() string {
	hint := ""
	var kerr sarama.KError
	if errors.As(e.Err, &kerr) {
		switch kerr {
		case sarama.ErrUnknownTopicOrPartition:
			hint = " (does the topic exist? pythia-pipe topics create makes it)"
		case sarama.ErrTopicAuthorizationFailed, sarama.ErrClusterAuthorizationFailed:
			hint = " (may this user write to the topic? check its ACLs)"
		}
	}
	return fmt.Sprintf("sink %s cannot write to topic %s: %v%s", e.Sink, e.Topic, e.Err, hint)
}
func (e *FatalError) Unwrap() error { return e.Err }

// EncodeError is a record whose output could not be computed (key, topic or body).
type EncodeError struct {
	What string
	Err  error
}

func (e *EncodeError) Error() string { return fmt.Sprintf("computing the %s: %v", e.What, e.Err) }
func (e *EncodeError) Unwrap() error { return e.Err }
