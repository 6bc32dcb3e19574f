// Package exactlyonce is the delivery mode `delivery: exactly_once`: a Kafka→Kafka pipeline
// reads, writes and commits in Kafka transactions. The source (source.go) polls for
// commit_interval, hands the records on, waits until each is done — its outputs and DLQ
// records written in the transaction by the sinks (sink.go) — and ends the transaction:
// outputs, DLQ records and source offsets commit together, or not at all. The transaction
// itself is kafkaio's (TxnSession); a Batch is its records, settled as the engine finishes
// them.
package exactlyonce

import (
	"sync/atomic"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// Batch is the records read in one transaction, each settled (record.Settler) when it and all
// its copies are done. The source ends the transaction once all are.
type Batch struct {
	*kafkaio.Transaction
	pending atomic.Int64
	drained chan struct{} // a token when pending reaches 0
}

func newBatch(x *kafkaio.Transaction) *Batch {
	return &Batch{Transaction: x, drained: make(chan struct{}, 1)}
}

// Add counts n records handed on in the transaction.
func (b *Batch) Add(n int) { b.pending.Add(int64(n)) }

// Settle is told that one record of the Batch is done.
func (b *Batch) Settle(uint64) {
	if b.pending.Add(-1) == 0 {
		select {
		case b.drained <- struct{}{}:
		default:
		}
	}
}

// Pending is how many records of the Batch are not done.
func (b *Batch) Pending() int64 { return b.pending.Load() }

// Drained gets a token each time the Batch's records are all done.
func (b *Batch) Drained() <-chan struct{} { return b.drained }
