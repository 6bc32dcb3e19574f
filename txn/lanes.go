package txn

import (
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrOver is the answer to a write whose transaction ended before the write was handed to
// the producer: nothing of it was written, and its record is read again.
var ErrOver = errors.New("its transaction is over")

// A broker that refuses a record for its own reason (too large, invalid) refuses the whole
// batch the record is in, so its batch-mates get the same answer: the refusal names the
// batch, not the record. A write sent alone (ProduceAlone) is a batch of its own, and its
// answer is its record's. lanes keep, per output partition, the writes in the producer, so
// that a write alone goes once those are answered, and the partition's later writes are held
// until it is answered: the partition's order is kept.

type partKey struct {
	topic     string
	partition int32
}

type lane struct {
	inflight int           // writes handed to the producer, not answered yet
	alone    bool          // a write goes alone: later writes are held
	held     []heldWrite   // in the order they came
	idle     chan struct{} // closed when inflight reaches 0, while a write alone waits for it
	turn     sync.Mutex    // one write alone at a time
}

type heldWrite struct {
	b       *Batch
	r       *kgo.Record
	promise func(*kgo.Record, error)
}

type lanes struct {
	mu  sync.Mutex
	all map[partKey]*lane
}

func (ls *lanes) get(r *kgo.Record) *lane {
	k := partKey{r.Topic, r.Partition}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.all == nil {
		ls.all = map[partKey]*lane{}
	}
	l := ls.all[k]
	if l == nil {
		l = &lane{}
		ls.all[k] = l
	}
	return l
}

// enter counts a write of l into the producer, or holds it when a write goes alone: false.
func (ls *lanes) enter(l *lane, w heldWrite) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l.alone {
		l.held = append(l.held, w)
		return false
	}
	l.inflight++
	return true
}

// answered wraps promise so that the lane counts the write out before promise runs.
func (ls *lanes) answered(l *lane, promise func(*kgo.Record, error)) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		ls.mu.Lock()
		if l.inflight--; l.inflight == 0 && l.idle != nil {
			close(l.idle)
			l.idle = nil
		}
		ls.mu.Unlock()
		promise(r, err)
	}
}

// hold makes l's next writes wait; the channel returned closes once what is in the producer
// is answered (nil when nothing is).
func (ls *lanes) hold(l *lane) <-chan struct{} {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l.alone = true
	if l.inflight == 0 {
		return nil
	}
	l.idle = make(chan struct{})
	return l.idle
}

// takeHeld returns l's held writes, or frees l when there are none left.
func (ls *lanes) takeHeld(l *lane) []heldWrite {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	held := l.held
	l.held = nil
	if len(held) == 0 {
		l.alone = false
	}
	return held
}

// ProduceAlone writes r in b's transaction as a batch of its own and returns the producer's
// answer: once every earlier write to r's partition is answered, r goes alone, and the
// partition's later writes follow it once it is answered. ErrOver when b ended first.
func (t *Session) ProduceAlone(b *Batch, r *kgo.Record) error {
	l := t.lanes.get(r)
	l.turn.Lock()
	defer l.turn.Unlock()
	defer t.release(l)
	if idle := t.lanes.hold(l); idle != nil {
		<-idle // the producer answers every write; an ending Batch fails those left
	}
	res := make(chan error, 1)
	if !t.handOver(l, heldWrite{b: b, r: r, promise: func(_ *kgo.Record, err error) { res <- err }}) {
		return ErrOver
	}
	return <-res
}

// release hands l's held writes to the producer in order, until none is left.
func (t *Session) release(l *lane) {
	for held := t.lanes.takeHeld(l); len(held) > 0; held = t.lanes.takeHeld(l) {
		for _, w := range held {
			if !t.handOver(l, w) {
				w.promise(w.r, ErrOver)
			}
		}
	}
}

// handOver gives a write of lane l to the producer; false, and nothing written, when its
// Batch is over.
func (t *Session) handOver(l *lane, w heldWrite) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.cur.Load() != w.b || w.b.ended.Load() {
		return false
	}
	t.lanes.mu.Lock()
	l.inflight++
	t.lanes.mu.Unlock()
	t.s.Produce(w.b.ctx, w.r, t.lanes.answered(l, w.promise))
	return true
}
