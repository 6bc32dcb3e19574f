package exactlyonce

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

// Sink writes records in the source's Kafka transaction: through the session's producer,
// into the transaction open now — every record in flight belongs to it (see
// TxnSession.Current) — and a write of a transaction that is over is dropped. A refused
// write fails the transaction (it aborts, and its records are read again) as the failure
// table judges it: a passing fault is waited out that way; a refusal that is a record's own
// fault marks the records it failed as suspects, written alone next time, and a record
// refused alone is dead-lettered in the transaction, which commits; a stop stops the pipeline.
type Sink struct {
	*sinks.Output
	sess   *kafkaio.TxnSession
	report sinks.Report
	faults faults

	mu      sync.Mutex
	pending int           // writes handed to the producer, not yet answered
	idle    chan struct{} // a token when pending reaches 0
}

// NewSink opens a transactional sink of out on the session.
func NewSink(out *sinks.Output, sess *kafkaio.TxnSession, report sinks.Report) *Sink {
	return &Sink{Output: out, sess: sess, report: report, idle: make(chan struct{}, 1)}
}

// Write hands each record to the producer in the open transaction.
func (t *Sink) Write(ctx context.Context, recs []*record.Record) error {
	for _, rec := range recs {
		x := t.sess.Current()
		if x == nil || x.Ended() {
			t.report(rec, sinks.ErrAborted)
			continue
		}
		at := sourceOf(rec)
		convicted, suspect := t.faults.of(at)
		if convicted != nil {
			x.AfterCommit(func() { t.faults.forget(at) })
			t.report(rec, convicted)
			continue
		}
		msg, err := t.Prepare(ctx, rec)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			t.report(rec, err)
			continue
		}
		if suspect {
			t.alone(rec, x, at, &msg)
			continue
		}
		t.add(1)
		if !t.sess.Produce(x, &msg, func(m *kafkaio.Message, err error) { t.answered(rec, x, at, m.Topic, err); t.add(-1) }) {
			t.add(-1)
			t.report(rec, sinks.ErrAborted)
		}
	}
	return nil
}

// answered is the producer's answer to a write of transaction x to topic.
func (t *Sink) answered(rec *record.Record, x *kafkaio.Transaction, at source, topic string, err error) {
	switch {
	case x.Ended() || errors.Is(err, kafkaio.ErrOver):
		t.report(rec, sinks.ErrAborted)
	case err != nil:
		f := failure.Judge(t.Op, t.At, topic, err)
		if f.Outcome == failure.Stop {
			t.report(rec, f)
			return
		}
		if f.Outcome == failure.DeadLetter {
			// The broker refused the batch the record was in: which of its records is at
			// fault is told by writing each alone, after the transaction aborts.
			t.faults.suspect(at)
		}
		x.Fail(fmt.Errorf("%s: %w", t.At, err))
		t.report(rec, sinks.ErrAborted)
	default:
		t.report(rec, nil)
	}
}

// alone writes a suspect record as a batch of its own and waits for the answer: refused
// for its own reason again, it is dead-lettered in this transaction.
func (t *Sink) alone(rec *record.Record, x *kafkaio.Transaction, at source, msg *kafkaio.Message) {
	t.add(1)
	defer t.add(-1)
	err := t.sess.ProduceAlone(x, msg)
	if err == nil {
		t.faults.forget(at)
	}
	if err == nil || x.Ended() || errors.Is(err, kafkaio.ErrOver) {
		t.answered(rec, x, at, msg.Topic, err)
		return
	}
	f := failure.Judge(t.Op, t.At, msg.Topic, err)
	if f.Outcome != failure.DeadLetter {
		t.answered(rec, x, at, msg.Topic, err)
		return
	}
	t.faults.convict(at, f)
	x.AfterCommit(func() { t.faults.forget(at) })
	t.Log.Warn("the broker refused a record written alone: dead-lettered", "stage", t.Target.Name, "to_topic", msg.Topic,
		"err", err, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
	t.report(rec, f)
}

func (t *Sink) add(n int) {
	t.mu.Lock()
	t.pending += n
	if t.pending == 0 {
		select {
		case t.idle <- struct{}{}:
		default:
		}
	}
	t.mu.Unlock()
}

func (t *Sink) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending
}

// Close waits for the producer's answers to what was handed to it (the session's client,
// closed by the source before the sinks, fails what it still holds).
func (t *Sink) Close(ctx context.Context) error {
	for t.outstanding() > 0 {
		select {
		case <-t.idle:
		case <-ctx.Done():
			return fmt.Errorf("%s: closed with %d writes unanswered: %w", t.At, t.outstanding(), ctx.Err())
		}
	}
	return nil
}
