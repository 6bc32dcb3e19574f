package atleastonce

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

// ClientRetries is how often a producer sends a refused write again by itself before the
// sink's order guard takes over. Once: a client keeps a partition's later writes behind a
// retried one only while it retries (sarama; franz-go fails them with it); the guard holds
// them back instead, and its refusals are counted and said, so the sooner it takes over, the
// sooner an outage shows.
const ClientRetries = 1

// logEvery is how often a sink whose writes are refused, or not answered, says so; lookEvery
// how often it looks (which is how closely it measures how long a partition has waited).
const (
	logEvery  = 10 * time.Second
	lookEvery = time.Second
)

// Sink writes records to Kafka through a producer, keeping the order of each output
// partition through refused writes (see the order guard). A record is done once the broker
// acknowledged it and every earlier write of its partition.
type Sink struct {
	*sinks.Output
	prod   kafkaio.Producer
	report sinks.Report
	guard  *guard

	quit chan struct{} // closed by Close: the resender stops
	loop conc.WaitGroup
}

// NewSink starts the writer of out on prod; report receives every outcome.
func NewSink(out *sinks.Output, prod kafkaio.Producer, report sinks.Report) *Sink {
	s := &Sink{Output: out, prod: prod, report: report, guard: newGuard(!out.Target.DLQ), quit: make(chan struct{})}
	s.loop.Go(s.resend)
	return s
}

// Write hands records to the producer; it blocks while the producer's buffers are full
// (backpressure), or while a computed topic cannot be looked up.
func (s *Sink) Write(ctx context.Context, recs []*record.Record) error {
	for _, rec := range recs {
		msg, err := s.Prepare(ctx, rec)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.report(rec, err)
			continue
		}
		// The body is written: what waits for the broker's answer is the message, and the
		// record only for its offset and, should the write be refused for good, its bytes as
		// consumed (the DLQ's). The decoded body goes now rather than with the answer.
		rec.Msg = nil
		w := &write{s: s, rec: rec, msg: msg}
		if !s.guard.add(w, partKey{msg.Topic, msg.Partition}) {
			continue // its partition is held: it follows the writes refused before it
		}
		s.produce(ctx, w)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// produce hands w to the producer; its answer comes to answered.
func (s *Sink) produce(ctx context.Context, w *write) {
	s.prod.Produce(ctx, &w.msg, w)
}

// Produced is the producer's answer to w.
func (w *write) Produced(_ *kafkaio.Message, err error) { w.s.answered(w, err) }

// answered is the producer's answer to w: acknowledged, refused for a passing reason (the
// guard holds its partition), or failed for good (dead-letter or stop).
func (s *Sink) answered(w *write, err error) {
	var settled [4]*write // on the stack: see guard.acked
	if err == nil {
		for _, done := range s.guard.acked(w, settled[:0]) {
			s.report(done.rec, nil)
		}
		return
	}
	if errors.Is(err, context.Canceled) { // the pipeline stops at once: the write is not the record's fate
		s.guard.unsent(w)
		return
	}
	f := failure.Judge(s.Op, s.At, w.msg.Topic, err)
	if f.Outcome == failure.Wait {
		s.guard.refused(w, err, sinks.Backoff)
		return
	}
	gone := s.guard.gone(w, settled[:0])
	s.report(w.rec, f)
	for _, done := range gone {
		s.report(done.rec, nil)
	}
}

// resend hands the writes the order guard releases to the producer, and says every logEvery
// when the broker refuses this sink's writes. It ends when Close closes quit.
func (s *Sink) resend() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // a resend blocked on a full producer gives up when the sink closes
		<-s.quit
		cancel()
	}()
	tick := time.NewTicker(lookEvery)
	defer tick.Stop()
	var timer *time.Timer
	var timerC <-chan time.Time
	var said refusalLog
	for {
		send, releasing, next := s.guard.due(time.Now())
		for len(send) > 0 {
			for _, w := range send {
				if s.produce(ctx, w); ctx.Err() != nil {
					return
				}
			}
			send, releasing = s.guard.released(releasing)
		}
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			timerC = timer.C
		}
		select {
		case <-s.guard.wake:
		case <-timerC:
		case now := <-tick.C:
			s.sayWaiting(&said, now)
		case <-s.quit:
			return
		}
	}
}

// refusalLog is what the sink's lines about waiting writes have said so far.
type refusalLog struct {
	refusals int64     // counted in the lines so far
	open     bool      // the last line said writes wait
	at       time.Time // when the last line was said
}

// sayWaiting logs, at most once per logEvery, that the broker refuses writes (with counts and
// the last error) or has not acknowledged any of a partition's writes for logEvery; and once
// that it takes them again.
func (s *Sink) sayWaiting(said *refusalLog, now time.Time) {
	st := s.guard.status()
	if now.Sub(said.at) < logEvery {
		return
	}
	switch {
	case st.refusals > said.refusals:
		s.Log.Warn("the broker refuses writes: they wait and are written again in order; nothing is dead-lettered",
			"stage", s.Target.Name, "refused", st.refusals-said.refusals, "waiting", st.unsettled, "held", strings.Join(st.held, ","),
			"rewritten", st.rewritten, "last_err", st.lastErr)
		said.refusals, said.open = st.refusals, true
	case st.waitedFor >= logEvery:
		s.Log.Warn("the broker has not acknowledged a write of a partition for a while: its writes wait (is its leader down, hung or unreachable?)",
			"stage", s.Target.Name, "partition", st.slowest, "for", st.waitedFor.Round(time.Second), "waiting", st.unsettled)
		said.open = true
	case said.open && len(st.held) == 0:
		s.Log.Info("the broker takes writes again", "stage", s.Target.Name, "refused", st.refusals, "rewritten", st.rewritten)
		said.open = false
	default:
		return
	}
	said.at = now
}

// Counters are the sink's own numbers: writes refused for a passing reason (each written again
// later), writes written twice to keep their partition in order, the partitions held after a
// refusal, and how long the slowest partition has waited for the broker.
func (s *Sink) Counters() map[string]int64 {
	st := s.guard.status()
	return map[string]int64{"refused": st.refusals, "rewritten": st.rewritten, "held": int64(len(st.held)), "wait_ms": st.waitedFor.Milliseconds()}
}

// Close waits until every written record is settled, or ctx ends; then it stops resending and
// closes the producer: the last holder of a shared one (or a producer of its own) gives what
// it still holds closeGrace more. Records not acknowledged by then are not reported: they will
// be read again.
func (s *Sink) Close(ctx context.Context) error {
	var err error
	for {
		n := s.guard.unsettledCount()
		if n == 0 {
			break
		}
		select {
		case <-s.guard.settled:
			continue
		case <-ctx.Done():
			err = fmt.Errorf("%s: closed with %d records not acknowledged: %w", s.At, n, ctx.Err())
		}
		break
	}
	close(s.quit)
	s.loop.Wait()
	if st := s.guard.status(); st.refusals > 0 {
		s.Log.Info("closing: writes the broker refused on the way", "stage", s.Target.Name, "refused", st.refusals,
			"rewritten", st.rewritten, "not_acknowledged", st.unsettled, "last_err", st.lastErr)
	}
	grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeGrace)
	defer cancel()
	s.prod.Close(grace)
	return err
}

// closeGrace is how long a closing producer may take to have its last writes answered.
const closeGrace = 3 * time.Second
