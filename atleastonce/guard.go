package atleastonce

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// The order guard keeps a sink's writes in order per output partition through failures.
//
// The producer retries a refused write once itself, holding the partition's later writes
// behind it. When it gives up, the guard takes over: the partition is held,
// its later writes wait in the guard instead of entering the producer, and once every write
// already in the producer has come back, the first waiting write is sent alone as a probe,
// after a backoff. When the probe is acknowledged the rest follow in order. A write that the
// broker acknowledged while an earlier one of its partition was refused is written again
// after it, so that reading the partition, the last copy of each record is in source order;
// those writes are counted as rewritten. A write settles (its record is done) only once it
// and every earlier write of its partition are through.

type writeState uint8

const (
	stWaiting  writeState = iota // in the guard, to be sent once the partition is released
	stInFlight                   // in the producer, outcome not back yet
	stAcked                      // acknowledged by the broker
	stGone                       // not this partition's any more: dead-lettered, or the pipeline stops
)

// write is one record on its way to a partition.
type write struct {
	s     *Sink
	rec   *record.Record
	msg   kafkaio.Message
	part  *partQueue
	state writeState
	again bool // acknowledged while an earlier write of its partition was refused: write it again
}

type partKey struct {
	topic     string
	partition int32
}

// partQueue is one output partition's writes not yet settled, in the order they were written.
type partQueue struct {
	key       partKey
	queue     []*write
	inFlight  int
	held      bool      // a write was refused: later writes wait in the guard
	releasing bool      // the probe got through and the waiting writes are on their way
	probe     *write    // the write testing a held partition, while in the producer
	failures  int       // refusals in a row, for the backoff
	retryAt   time.Time // when to probe next
	// How long the partition has waited for the broker, sampled by status (off the write
	// path): its writes settled ever, as status last saw them, and when it saw them move.
	settledN, seenN int64
	movedAt         time.Time
}

// guard is the order guard of one sink.
type guard struct {
	ordered bool // rewrite writes acknowledged out of order (false for the DLQ: its order is not promised)

	mu        sync.Mutex
	parts     map[partKey]*partQueue
	unsettled int
	settled   chan struct{} // signalled when writes settle, for Close
	wake      chan struct{} // signalled when a held partition may be due
	rewritten int64
	refusals  int64
	lastErr   error
}

func newGuard(ordered bool) *guard {
	return &guard{ordered: ordered, parts: map[partKey]*partQueue{}, settled: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// add queues a write for its partition; send says whether to hand it to the producer now
// (false: the partition is held and the write waits in the guard).
func (g *guard) add(w *write, key partKey) (send bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.parts[key]
	if p == nil {
		p = &partQueue{key: key}
		g.parts[key] = p
	}
	w.part = p
	p.queue = append(p.queue, w)
	g.unsettled++
	if p.held {
		w.state = stWaiting
		p.wakeIfIdle(g)
		return false
	}
	p.start(w)
	return true
}

// wakeIfIdle wakes the resender when a held partition has nothing left in the producer:
// its probe (or release) may be due.
func (p *partQueue) wakeIfIdle(g *guard) {
	if p.held && p.inFlight == 0 {
		signal(g.wake)
	}
}

func (p *partQueue) start(w *write) {
	w.state, w.again = stInFlight, false
	p.inFlight++
}

// unsent undoes the hand-over of a write that never reached the producer (the pipeline
// stopped at once): it waits in the guard, never settled.
func (g *guard) unsent(w *write) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w.state = stWaiting
	w.part.inFlight--
}

// acked records the broker's acknowledgement of w and returns the writes that settle,
// appended to done (a caller's array: most answers settle one write, and a slice made for it
// was an allocation per record).
func (g *guard) acked(w *write, done []*write) []*write {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := w.part
	p.inFlight--
	w.state = stAcked
	if w == p.probe {
		p.probe, p.failures = nil, 0 // the writes waiting behind it may follow: wakeIfIdle below
	}
	if g.ordered && p.waitingBefore(w) {
		w.again = true
		g.rewritten++
	}
	p.wakeIfIdle(g)
	return g.settle(p, done)
}

// refused records that the producer gave up on w for a passing reason: its partition is held,
// and w waits to be written again, followed by every write after it that got through meanwhile.
func (g *guard) refused(w *write, err error, backoff func(failures int) time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := w.part
	p.inFlight--
	w.state = stWaiting
	g.refusals++
	g.lastErr = err
	if w == p.probe || !p.held || p.releasing { // once per round of writes, not per write
		p.failures++
		p.retryAt = time.Now().Add(backoff(p.failures))
	}
	if w == p.probe {
		p.probe = nil
	}
	p.held, p.releasing = true, false
	if g.ordered {
		waiting := false
		for _, later := range p.queue {
			switch {
			case later.state == stWaiting:
				waiting = true
			case waiting && later.state == stAcked && !later.again:
				later.again = true
				g.rewritten++
			}
		}
	}
	signal(g.wake)
}

// gone records that w leaves its partition (dead-lettered, or the pipeline stops) and
// returns the writes that settle, appended to done.
func (g *guard) gone(w *write, done []*write) []*write {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := w.part
	if w.state == stInFlight {
		p.inFlight--
	}
	if w == p.probe {
		p.probe = nil
	}
	w.state = stGone
	g.unmarkPassed(p)
	p.wakeIfIdle(g)
	return g.settle(p, done)
}

// unmarkPassed clears the mark of writes to be written again that no waiting write precedes
// any more (the one they passed left the partition): they are in order as written.
func (g *guard) unmarkPassed(p *partQueue) {
	waiting := false
	for _, w := range p.queue {
		switch {
		case w.state == stWaiting:
			waiting = true
		case w.again && !waiting:
			w.again = false
			g.rewritten--
		}
	}
}

// settle pops the partition's done prefix: acknowledged writes (appended to done, to be
// reported) and gone ones.
func (g *guard) settle(p *partQueue, done []*write) []*write {
	n := 0
	for _, w := range p.queue {
		if w.state == stGone {
			n++
			continue
		}
		if w.state != stAcked || w.again {
			break
		}
		done = append(done, w)
		n++
	}
	if n == 0 {
		return done
	}
	clear(p.queue[:n])
	p.queue = p.queue[n:]
	p.settledN += int64(n)
	g.unsettled -= n
	if len(p.queue) == 0 && !p.held {
		delete(g.parts, p.key)
	}
	signal(g.settled)
	return done
}

// waitingBefore reports whether a write before w in its partition waits to be written.
func (p *partQueue) waitingBefore(w *write) bool {
	for _, e := range p.queue {
		if e == w {
			return false
		}
		if e.state == stWaiting {
			return true
		}
	}
	return false
}

// due returns, in order, what to hand the producer now for held partitions: for each one with
// nothing in the producer, its first waiting write as a probe once its backoff has passed;
// or, once its probe got through, its waiting and rewritten writes, as it is released (the
// caller reports with released when they are handed over). next is when to look again
// (zero: when woken).
func (g *guard) due(now time.Time) (send []*write, releasing []*partQueue, next time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.parts {
		if !p.held || p.releasing || p.probe != nil || p.inFlight > 0 {
			continue
		}
		if p.failures == 0 || !p.hasWaiting() {
			before := len(send)
			send = p.takeWaiting(send)
			if len(send) == before { // nothing held back: the partition is free again
				g.unhold(p)
				continue
			}
			p.releasing = true
			releasing = append(releasing, p)
			continue
		}
		if now.Before(p.retryAt) {
			if next.IsZero() || p.retryAt.Before(next) {
				next = p.retryAt
			}
			continue
		}
		for _, w := range p.queue {
			if w.state == stWaiting {
				p.start(w)
				p.probe = w
				send = append(send, w)
				break
			}
		}
	}
	return send, releasing, next
}

// takeWaiting starts the partition's waiting writes and those to write again, in order.
func (p *partQueue) takeWaiting(send []*write) []*write {
	for _, w := range p.queue {
		if w.state == stWaiting || w.state == stAcked && w.again {
			p.start(w)
			send = append(send, w)
		}
	}
	return send
}

// released is told that the writes of releasing partitions were handed to the producer. It
// returns the writes that were held back meanwhile, to hand over next; a partition with none
// left is released (unless a write was refused meanwhile: then it is held again).
func (g *guard) released(parts []*partQueue) (send []*write, still []*partQueue) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range parts {
		if !p.releasing {
			continue
		}
		before := len(send)
		send = p.takeWaiting(send)
		if len(send) > before {
			still = append(still, p)
			continue
		}
		g.unhold(p)
	}
	return send, still
}

// unhold frees a partition: its writes go straight to the producer again.
func (g *guard) unhold(p *partQueue) {
	p.held, p.releasing, p.failures = false, false, 0
	if len(p.queue) == 0 {
		delete(g.parts, p.key)
	}
}

func (p *partQueue) hasWaiting() bool {
	for _, w := range p.queue {
		if w.state == stWaiting {
			return true
		}
	}
	return false
}

// unsettledCount is how many writes are not settled yet.
func (g *guard) unsettledCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.unsettled
}

// status is what the guard holds, for logs and counters.
type guardStatus struct {
	unsettled int
	held      []string
	rewritten int64
	refusals  int64
	lastErr   error
	// The partition whose writes have waited longest for the broker with none settling, and
	// for how long (as seen by the calls of status: to within the time between two).
	slowest   string
	waitedFor time.Duration
}

func (g *guard) status() guardStatus { return g.statusAt(time.Now()) }

func (g *guard) statusAt(now time.Time) guardStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := guardStatus{unsettled: g.unsettled, rewritten: g.rewritten, refusals: g.refusals, lastErr: g.lastErr}
	for k, p := range g.parts {
		name := k.topic + "/" + strconv.Itoa(int(k.partition))
		if p.held {
			s.held = append(s.held, name)
		}
		if len(p.queue) == 0 || p.movedAt.IsZero() || p.settledN != p.seenN {
			p.seenN, p.movedAt = p.settledN, now
			continue
		}
		if d := now.Sub(p.movedAt); d > s.waitedFor {
			s.slowest, s.waitedFor = name, d
		}
	}
	slices.Sort(s.held)
	return s
}
