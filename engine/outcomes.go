package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// reporter returns the outcome handler of a sink node.
func (e *Engine) reporter(n *node) sinks.Report {
	return func(rec *record.Record, err error) {
		if err == sinks.ErrAborted {
			rec.Track.Done() // read again: nothing of it was written
			return
		}
		if err != nil {
			n.stats.failed.Add(1)
			e.outcome(n, rec, err)
			return
		}
		n.stats.acked.Add(1)
		if !rec.Timestamp.IsZero() {
			n.observe(time.Since(rec.Timestamp))
		}
		rec.Track.Done()
	}
}

func (e *Engine) reportDLQ(rec *record.Record, err error) {
	if err == sinks.ErrAborted {
		rec.Track.Done()
		return
	}
	if err != nil {
		e.stats["dlq"].failed.Add(1)
		e.outcome(nil, rec, err)
		return
	}
	e.stats["dlq"].acked.Add(1)
	rec.Track.Done()
}

// StageError is a record that failed at a stage (or sink) of a pipeline without a DLQ.
type StageError struct {
	Stage     string
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *StageError) Error() string {
	return fmt.Sprintf("%s failed on %s/%d@%d: %v (no dlq is configured, so the pipeline stops here and does not commit this record)",
		e.Stage, e.Topic, e.Partition, e.Offset, e.Err)
}
func (e *StageError) Unwrap() error { return e.Err }

// attempter is an error that knows how often its stage tried (retry stages).
type attempter interface{ Attempts() int }

// outcome is the one place a failed record's fate is settled, as failure.Judge decided it:
// dead-lettered (or, without a DLQ, the pipeline stops), the pipeline stopped, or left
// unsettled while the pipeline stops at once. n is the stage or sink the record failed at;
// nil when the DLQ itself could not take it. Sinks wait out passing failures themselves:
// no write they could retry reaches here.
func (e *Engine) outcome(n *node, rec *record.Record, err error) {
	var f *failure.Error
	if !errors.As(err, &f) {
		f = failure.Judge(failure.Process, "stage "+n.name, "", err)
		if f.Outcome == failure.Wait && e.hard.Err() == nil {
			f.Outcome = failure.DeadLetter // cancelled by something else than the pipeline's stop: the record's
		}
	}
	switch {
	case f.Outcome == failure.Wait:
		// A stage cut short by a hard stop: not done, so read again after a restart.
		e.log.Debug("record left unfinished", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
	case f.Outcome == failure.Stop:
		e.stopOnError(f)
	case n == nil:
		e.stopOnError(fmt.Errorf("the dead-letter queue cannot take the record %s/%d@%d, so the pipeline stops without committing it: %w",
			rec.Topic, rec.Partition, rec.Offset, f))
	case e.dlq == nil:
		e.stopOnError(&StageError{Stage: n.name, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Err: f.Err})
	default:
		e.deadLetter(n, rec, f)
	}
}

// deadLetter writes the record that failed at n to the DLQ.
func (e *Engine) deadLetter(n *node, rec *record.Record, f *failure.Error) {
	attempts := 1
	var a attempter
	if errors.As(f.Err, &a) {
		attempts = a.Attempts()
	}
	n.stats.deadLettered.Add(1)
	reason := f.Reason()
	if e.log.Enabled(e.hard, slog.LevelDebug) { // its arguments cost when a tenth of records fail
		e.log.Debug("dead-lettered", "stage", n.name, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", reason)
	}
	d := dlq.Record(rec, dlq.Failure{Pipeline: e.p.Name, Stage: n.name, Reason: reason, Attempts: attempts, At: time.Now()})
	if werr := e.dlq.Write(e.hard, []*record.Record{d}); werr != nil {
		e.log.Debug("not dead-lettered: the pipeline stops at once", "stage", n.name, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
	}
}

// stopOnError records the first fatal error and stops the source: what is done is still committed,
// the failed record and what follows it in its partition are not.
func (e *Engine) stopOnError(err error) {
	e.fatalMu.Lock()
	first := e.fatal == nil
	if first {
		e.fatal = err
	}
	e.fatalMu.Unlock()
	if first {
		e.log.Error("stopping the pipeline", "err", err)
		e.stopSource(sources.ErrAbort) // no drain: what failed will not finish
	}
}

func (e *Engine) fatalErr() error {
	e.fatalMu.Lock()
	defer e.fatalMu.Unlock()
	return e.fatal
}
