// The contract between the engine and a source, in one place: what a source is (Source),
// how it hands records over (Intake), how it learns a record is done (Settler, through the
// record's Tracker) and how it is told to stop (its context, with ErrAbort as the cause when
// the pipeline failed).

package sources

import (
	"context"
	"errors"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// Source is where an engine's records come from: the Kafka consumer group in production,
// records in memory for tests. Run hands batches to in until ctx ends, then returns once what
// it handed on is settled (or its drain timeout passed) and committed. Every record carries a
// Tracker the engine completes when the record and all its copies are done.
type Source interface {
	Run(ctx context.Context, in Intake) error
}

// Settler is told when a consumed record is done: every record a source hands over carries a
// record.Tracker made with record.NewTracker(settler, seq), and the engine completes it when
// the record and all its copies are filtered, acknowledged by a sink or dead-lettered. The Kafka
// source's partition ledger is one.
type Settler = record.Settler

// Intake is the pipeline's way in. A source hands it a batch with one send on C, so that a
// batch is taken whole or not at all; Stopped closes when the pipeline stops at once, after
// which nothing is taken. The pipeline owns a batch once it is sent.
type Intake struct {
	C       chan<- []*record.Record
	Stopped <-chan struct{}
	// State, when set, is told what the stateful stages' stores follow: partitions coming
	// and going, and under exactly-once the ends of transactions. Nil without them.
	State StateHooks
	// Ticks, when set, asks the source to hand ticks (records with Tick set, no offset) for
	// every partition of Topics it reads, every Every, inside its transactions (exactly-once:
	// a tick's outputs must be in one). Nil otherwise.
	Ticks *Ticks
}

// Ticks is what an exactly-once source is asked to tick.
type Ticks struct {
	Every  time.Duration
	Topics []string
}

// StateHooks are told what stateful stages' stores must follow. A store is an input
// partition's; under exactly-once its changes are kept only when their transaction commits.
type StateHooks interface {
	// Claimed: the partition comes to the instance; none of its records was handed on yet.
	Claimed(topic string, partition int32)
	// Released: the partition left the instance; done says every record of it handed on is
	// done (the source drained it), so that nothing of it is still in the stages.
	Released(topic string, partition int32, done bool)
	// Committed: the open transaction committed (exactly-once).
	Committed()
	// Aborted: the open transaction aborted and its records are out of the pipeline, or the
	// pipeline stops. Unsure: its end was not confirmed, so the broker may have committed it.
	Aborted(unsure bool)
}

// Deliver hands batch to the pipeline, waiting while it is full; an error means the batch
// was not taken (ctx ended, or the pipeline stopped).
func (in Intake) Deliver(ctx context.Context, batch []*record.Record) error {
	select {
	case in.C <- batch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-in.Stopped:
		return errStopped
	}
}

var errStopped = errors.New("the pipeline stopped")

// ErrAbort, as the cause of the context given to Run, stops the source without draining:
// the pipeline has failed, so what is in flight will not finish; what is done is committed.
var ErrAbort = errors.New("the pipeline stopped on an error")
