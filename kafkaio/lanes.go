package kafkaio

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

type lane struct {
	inflight int           // writes handed to the producer, not answered yet
	alone    bool          // a write goes alone: later writes are held
	held     []heldWrite   // in the order they came
	idle     chan struct{} // closed when inflight reaches 0, while a write alone waits for it
	turn     sync.Mutex    // one write alone at a time
}

type heldWrite struct {
	x    *Transaction
	m    *Message
	done func(*Message, error)
}

type lanes struct {
	mu  sync.Mutex
	all map[partKey]*lane
}

func (ls *lanes) get(m *Message) *lane {
	k := partKey{m.Topic, m.Partition}
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

// answered is franz-go's promise of w: the lane counts the write out before w is told.
func (ls *lanes) answered(l *lane, w heldWrite) func(*kgo.Record, error) {
	return func(_ *kgo.Record, err error) {
		ls.mu.Lock()
		if l.inflight--; l.inflight == 0 && l.idle != nil {
			close(l.idle)
			l.idle = nil
		}
		ls.mu.Unlock()
		w.done(w.m, err)
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

// ProduceAlone writes m in transaction x as a batch of its own and returns the producer's
// answer: once every earlier write to m's partition is answered, m goes alone, and the
// partition's later writes follow it once it is answered. ErrOver when x ended first.
func (t *TxnSession) ProduceAlone(x *Transaction, m *Message) error {
	l := t.lanes.get(m)
	l.turn.Lock()
	defer l.turn.Unlock()
	defer t.release(l)
	if idle := t.lanes.hold(l); idle != nil {
		<-idle // the producer answers every write; an ending Batch fails those left
	}
	res := make(chan error, 1)
	if !t.handOver(l, heldWrite{x: x, m: m, done: func(_ *Message, err error) { res <- err }}) {
		return ErrOver
	}
	return <-res
}

// release hands l's held writes to the producer in order, until none is left.
func (t *TxnSession) release(l *lane) {
	for held := t.lanes.takeHeld(l); len(held) > 0; held = t.lanes.takeHeld(l) {
		for _, w := range held {
			if !t.handOver(l, w) {
				w.done(w.m, ErrOver)
			}
		}
	}
}

// handOver gives a write of lane l to the producer; false, and nothing written, when its
// transaction is over.
func (t *TxnSession) handOver(l *lane, w heldWrite) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.cur.Load() != w.x || w.x.ended.Load() {
		return false
	}
	t.lanes.mu.Lock()
	l.inflight++
	t.lanes.mu.Unlock()
	t.s.Produce(w.x.ctx, toFranz(w.m), t.lanes.answered(l, w))
	return true
}
