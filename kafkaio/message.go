package kafkaio

import (
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// Header is a record header, as the pipeline carries it.
type Header = record.Header

// Message is a Kafka record as the layer reads and writes it, whatever the client.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64 // set when read; ignored when written
	Key       []byte
	Value     []byte // nil: a null value (a tombstone)
	Headers   []Header
	Timestamp time.Time
	// Control marks a transaction's marker, which a reader that keeps them (Backlog) sees at
	// its offset: never a record to process.
	Control bool
}
