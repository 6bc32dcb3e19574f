package atleastonce

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
)

var errRefused = errors.New("NOT_ENOUGH_REPLICAS")

func noBackoff(int) time.Duration { return 0 }

// guardRun drives a guard the way the sink does, with a fake producer: every write handed to
// the producer is in flight until the test acknowledges or refuses it.
type guardRun struct {
	t        *testing.T
	g        *guard
	writes   []*write
	inFlight []*write // handed to the producer, in order
	settled  []int    // the seqs settled, in order
	written  []int    // what the broker stored, in order
}

func newGuardRun(t *testing.T) *guardRun { return &guardRun{t: t, g: newGuard(true)} }

func (r *guardRun) write(n int) {
	for i := 0; i < n; i++ {
		w := &write{rec: &record.Record{Offset: int64(len(r.writes))}, msg: kafkaio.Message{}}
		r.writes = append(r.writes, w)
		if r.g.add(w, partKey{"out", 0}) {
			r.inFlight = append(r.inFlight, w)
		}
	}
}

func (r *guardRun) seq(w *write) int { return int(w.rec.Offset) }

// ack acknowledges the oldest write in flight.
func (r *guardRun) ack() {
	w := r.inFlight[0]
	r.inFlight = r.inFlight[1:]
	r.written = append(r.written, r.seq(w))
	for _, s := range r.g.acked(w, nil) {
		r.settled = append(r.settled, r.seq(s))
	}
}

// refuse refuses the oldest write in flight.
func (r *guardRun) refuse() {
	w := r.inFlight[0]
	r.inFlight = r.inFlight[1:]
	r.g.refused(w, errRefused, noBackoff)
}

// resend hands over what the guard releases, as the sink's resender does.
func (r *guardRun) resend() {
	send, releasing, _ := r.g.due(time.Now().Add(time.Hour))
	for len(send) > 0 {
		r.inFlight = append(r.inFlight, send...)
		send, releasing = r.g.released(releasing)
	}
}

func seqs(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestGuardKeepsOrder(t *testing.T) {
	t.Run("all acknowledged settle in order", func(t *testing.T) {
		r := newGuardRun(t)
		r.write(5)
		for range 5 {
			r.ack()
		}
		if !slices.Equal(r.settled, seqs(5)) || r.g.status().unsettled != 0 {
			t.Fatalf("settled %v, %d unsettled", r.settled, r.g.status().unsettled)
		}
	})
	t.Run("a refused write holds its partition and goes first again", func(t *testing.T) {
		r := newGuardRun(t)
		r.write(3)
		r.ack()    // 0
		r.refuse() // 1: the partition is held
		r.refuse() // 2
		r.write(2) // 3, 4 wait in the guard
		if len(r.inFlight) != 0 {
			t.Fatalf("%d writes entered the producer while the partition was held", len(r.inFlight))
		}
		r.resend() // the probe: 1 alone
		if len(r.inFlight) != 1 || r.seq(r.inFlight[0]) != 1 {
			t.Fatalf("probe %v, want write 1 alone", r.inFlight)
		}
		r.refuse() // refused again: probe again
		r.resend()
		r.ack() // the probe passes
		r.resend()
		for len(r.inFlight) > 0 {
			r.ack()
		}
		if !slices.Equal(r.written, seqs(5)) || !slices.Equal(r.settled, seqs(5)) {
			t.Fatalf("written %v, settled %v", r.written, r.settled)
		}
	})
	t.Run("a write that passed a refused one is written again after it", func(t *testing.T) {
		r := newGuardRun(t)
		r.write(3)
		w1, w2 := r.inFlight[1], r.inFlight[2]
		r.inFlight = []*write{r.inFlight[0]}
		r.ack()
		// 2 is acknowledged before 1 is refused (the producer returns them on two channels).
		r.inFlight = []*write{w2}
		r.ack()
		r.inFlight = []*write{w1}
		r.refuse()
		if s := r.g.status(); s.rewritten != 1 || !slices.Equal(r.settled, []int{0}) {
			t.Fatalf("rewritten %d, settled %v: write 2 must wait to be written again", s.rewritten, r.settled)
		}
		r.resend() // probe 1
		r.ack()
		r.resend() // 2 again
		for len(r.inFlight) > 0 {
			r.ack()
		}
		// The broker holds 0 2 1 2: read by last copy, the partition is in order.
		if !slices.Equal(r.written, []int{0, 2, 1, 2}) || !slices.Equal(r.settled, seqs(3)) {
			t.Fatalf("written %v, settled %v", r.written, r.settled)
		}
	})
	t.Run("a dead-lettered write leaves its partition", func(t *testing.T) {
		r := newGuardRun(t)
		r.write(3)
		w := r.inFlight[0]
		r.inFlight = r.inFlight[1:]
		if s := r.g.gone(w, nil); len(s) != 0 {
			t.Fatalf("settled %v", s)
		}
		r.ack()
		r.ack()
		if !slices.Equal(r.settled, []int{1, 2}) || r.g.status().unsettled != 0 {
			t.Fatalf("settled %v", r.settled)
		}
	})
	t.Run("writes held while a release is handed over follow it", func(t *testing.T) {
		r := newGuardRun(t)
		r.write(2)
		r.refuse()
		r.refuse()
		r.resend()
		r.ack() // the probe (0) passes
		send, releasing, _ := r.g.due(time.Now())
		r.write(1) // written while the release is handed over: it must not go first
		if len(r.inFlight) != 0 {
			t.Fatal("a new write passed the released ones")
		}
		r.inFlight = append(r.inFlight, send...)
		more, _ := r.g.released(releasing)
		r.inFlight = append(r.inFlight, more...)
		for len(r.inFlight) > 0 {
			r.ack()
		}
		if !slices.Equal(r.written, seqs(3)) {
			t.Fatalf("written %v", r.written)
		}
	})
}

// Cases a review found: a held partition must never stay held for good, nor a mark to
// write again outlive the write it was passed.
func TestGuardNeverHoldsForGood(t *testing.T) {
	t.Run("a lone probe gets through", func(t *testing.T) {
		r := newGuardRun(t)
		r.write(1)
		r.refuse()
		r.resend() // the probe
		r.ack()    // nothing waits behind it
		r.resend()
		r.write(1)
		if len(r.inFlight) != 1 {
			t.Fatalf("a later write waits in a partition nothing holds (%d in flight)", len(r.inFlight))
		}
		r.ack()
		if !slices.Equal(r.settled, seqs(2)) || r.g.status().unsettled != 0 {
			t.Fatalf("settled %v", r.settled)
		}
	})
	t.Run("the probe is dead-lettered and nothing waits", func(t *testing.T) {
		r := newGuardRun(t)
		r.write(3)
		r.refuse() // 0
		r.ack()    // 1 passed 0
		r.ack()    // 2 passed 0
		r.resend()
		r.goneFirst() // the probe, 0, leaves for the DLQ: 1 and 2 are in order as written
		r.resend()
		if s := r.g.status(); s.unsettled != 0 || s.rewritten != 0 || len(s.held) != 0 {
			t.Fatalf("%d unsettled, %d to rewrite, held %v", s.unsettled, s.rewritten, s.held)
		}
		if !slices.Equal(r.settled, []int{1, 2}) {
			t.Fatalf("settled %v", r.settled)
		}
	})
	t.Run("the probe is dead-lettered and a later write waits", func(t *testing.T) {
		r := newGuardRun(t)
		r.write(4)
		r.refuse() // 0
		r.ack()    // 1 passed 0
		r.refuse() // 2
		r.ack()    // 3 passed 0 and 2
		r.resend()
		r.goneFirst() // 0 leaves: 1 is in order, 3 still passed 2
		r.resend()    // probe 2
		r.ack()
		r.resend()
		for len(r.inFlight) > 0 {
			r.ack()
		}
		if !slices.Equal(r.written, []int{1, 3, 2, 3}) || !slices.Equal(r.settled, []int{1, 2, 3}) {
			t.Fatalf("written %v, settled %v", r.written, r.settled)
		}
	})
	t.Run("the resender is woken when a round drains", func(t *testing.T) {
		r := newGuardRun(t)
		r.write(3)
		r.refuse()
		<-r.g.wake
		r.ack()
		r.ack()
		select {
		case <-r.g.wake:
		default:
			t.Fatal("nothing in the producer any more, and the resender sleeps on")
		}
	})
}

// goneFirst dead-letters the oldest write in flight.
func (r *guardRun) goneFirst() {
	w := r.inFlight[0]
	r.inFlight = r.inFlight[1:]
	for _, s := range r.g.gone(w, nil) {
		r.settled = append(r.settled, r.seq(s))
	}
}

// The backoff between probes of a held partition grows with refusals in a row, once per
// round of writes, not once per write.
func TestGuardBacksOffPerRound(t *testing.T) {
	g := newGuard(true)
	var ws []*write
	for i := range 3 {
		w := &write{rec: &record.Record{Offset: int64(i)}, msg: kafkaio.Message{}}
		g.add(w, partKey{"out", 0})
		ws = append(ws, w)
	}
	var failures []int
	backoff := func(n int) time.Duration { failures = append(failures, n); return time.Hour }
	for _, w := range ws {
		g.refused(w, errRefused, backoff)
	}
	if !slices.Equal(failures, []int{1}) {
		t.Fatalf("backoff asked for %v, want once", failures)
	}
	if send, _, next := g.due(time.Now()); len(send) != 0 || next.IsZero() {
		t.Fatalf("probed before the backoff passed: %v", send)
	}
}

// The guard measures how long a partition has gone with writes out and none settling, from
// when a look first saw it so: the progress line, /healthz and the sink's warning read it.
func TestGuardMeasuresHowLongAPartitionWaits(t *testing.T) {
	at := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	sec := func(n int) time.Time { return at.Add(time.Duration(n) * time.Second) }
	for _, c := range []struct {
		name  string
		steps func(r *guardRun) // between the looks at 0 s and 12 s
		want  time.Duration     // the wait the look at 12 s sees
		held  []string
	}{
		{"nothing answered", func(r *guardRun) {}, 12 * time.Second, nil},
		{"refused: held and waiting", func(r *guardRun) { r.refuse() }, 12 * time.Second, []string{"out/0"}},
		{"one settled: moving", func(r *guardRun) { r.ack() }, 0, nil},
		{"all settled: nothing out", func(r *guardRun) { r.ack(); r.ack() }, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newGuardRun(t)
			r.write(2)
			if s := r.g.statusAt(sec(0)); s.waitedFor != 0 {
				t.Fatalf("the first look sees a wait of %v", s.waitedFor)
			}
			c.steps(r)
			s := r.g.statusAt(sec(12))
			if s.waitedFor != c.want || !slices.Equal(s.held, c.held) {
				t.Fatalf("waited %v, held %v; want %v, held %v", s.waitedFor, s.held, c.want, c.held)
			}
			if c.want > 0 && s.slowest != "out/0" {
				t.Fatalf("the slowest partition is %q", s.slowest)
			}
		})
	}
}
