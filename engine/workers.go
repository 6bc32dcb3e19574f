package engine

import (
	"context"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// send hands a batch to a node; with key ordering each key goes to one worker, so records
// with the same key keep their order. It gives up (dropping the batch, which then is never
// committed) only when ctx ends.
func (n *node) send(ctx context.Context, batch []*record.Record) {
	if len(n.ins) == 1 {
		select {
		case n.ins[0] <- batch:
		case <-ctx.Done():
		}
		return
	}
	parts := make([][]*record.Record, len(n.ins))
	for _, r := range batch {
		i := workerFor(r, len(n.ins))
		parts[i] = append(parts[i], r)
	}
	for i, part := range parts {
		if len(part) == 0 {
			continue
		}
		select {
		case n.ins[i] <- part:
		case <-ctx.Done():
			return
		}
	}
}

// workerFor picks the worker of a record: by key, or by partition for records without one.
func workerFor(r *record.Record, n int) int {
	if r.Key == nil {
		return int(r.Partition) % n
	}
	h := fnv.New32a()
	h.Write(r.Key)
	return int(h.Sum32() % uint32(n))
}

// work is one worker of a stage: it processes batches, counts, and passes outputs on.
func (e *Engine) work(n *node, in <-chan []*record.Record) {
	outs := make([]stages.Output, 0, 4)
	bufs := make([][]*record.Record, len(n.targets))
	for batch := range in {
		var c tally
		began := time.Now()
		for _, rec := range batch {
			var err error
			outs, err = n.stage.Process(e.hard, rec, outs[:0])
			e.route(n, rec, outs, err, bufs, &c)
		}
		n.observe(time.Since(began) / time.Duration(max(len(batch), 1))) // once per batch: a clock read per record costs
		c.add(n.stats)
		e.flush(n, bufs)
	}
}

// tally counts a batch's outcomes, added to the node's counters once per batch.
type tally struct{ received, emitted, dropped, failed int64 }

func (c *tally) add(s *counters) {
	s.received.Add(c.received)
	s.emitted.Add(c.emitted)
	s.dropped.Add(c.dropped)
	s.errors.Add(c.failed)
}

// route settles what one record became at stage n: a failure goes to the DLQ, no output is
// done, outputs are copied to their ports' targets (buffered in bufs until flush).
func (e *Engine) route(n *node, rec *record.Record, outs []stages.Output, err error, bufs [][]*record.Record, c *tally) {
	if !rec.Tick { // a tick is no record: only what it emits counts
		c.received++
	}
	if err != nil {
		c.failed++
		e.outcome(n, rec, err)
		return
	}
	if n.changes != nil && n.stage != nil {
		e.routeOrdered(n, rec, outs, bufs, c)
		return
	}
	copies := 0
	for _, o := range outs {
		copies += len(n.ports[o.Port])
	}
	if copies == 0 {
		if !rec.Tick {
			c.dropped++
		}
		rec.Track.Done()
		return
	}
	c.emitted += int64(len(outs))
	rec.Track.Add(copies - 1) // before any copy moves on
	for _, o := range outs {
		for j, t := range n.ports[o.Port] {
			r := o.Rec
			if j > 0 {
				r = o.Rec.Clone()
			}
			bufs[t] = append(bufs[t], r)
		}
	}
}

func (e *Engine) flush(n *node, bufs [][]*record.Record) {
	for t, b := range bufs {
		if len(b) > 0 {
			n.targets[t].send(e.hard, b)
			bufs[t] = nil // the target owns it now
		}
	}
}

// asyncLimit bounds the records an asynchronous worker holds (waiting or queued behind one).
const asyncLimit = 1024

// workAsync is a worker of a stage that can wait without holding the worker (a retry). Each
// record is started and finishes whenever it does; with key ordering, a record whose key has
// one in progress waits behind it, so a key keeps its order while other keys go on.
func (e *Engine) workAsync(n *node, in <-chan []*record.Record, st stages.AsyncStage, keyed bool) {
	type completion struct {
		rec   *record.Record
		key   string // the order key the record had when it started: the stage may change its key
		outs  []stages.Output
		err   error
		began time.Time
	}
	done := make(chan completion, asyncLimit)
	bufs := make([][]*record.Record, len(n.targets))
	queued := map[string][]*record.Record{} // by key: records waiting behind the one in progress
	inflight := 0
	start := func(rec *record.Record, key string) {
		began := time.Now()
		st.Start(e.hard, rec, func(outs []stages.Output, err error) { done <- completion{rec, key, outs, err, began} })
	}
	closed := false
	for !closed || inflight > 0 {
		intake := in
		if closed || inflight >= asyncLimit {
			intake = nil
		}
		select {
		case batch, ok := <-intake:
			if !ok {
				closed = true
				continue
			}
			for _, rec := range batch {
				inflight++
				if !keyed {
					start(rec, "")
					continue
				}
				k := orderKey(rec)
				if q, busy := queued[k]; busy {
					queued[k] = append(q, rec)
					continue
				}
				queued[k] = nil
				start(rec, k)
			}
		case c := <-done:
			inflight--
			n.observe(time.Since(c.began))
			var t tally
			e.route(n, c.rec, c.outs, c.err, bufs, &t)
			t.add(n.stats)
			e.flush(n, bufs)
			if keyed {
				if q := queued[c.key]; len(q) > 0 {
					queued[c.key] = q[1:]
					start(q[0], c.key)
				} else {
					delete(queued, c.key)
				}
			}
		}
	}
}

// orderKey is what records must keep their order by: the key, or the partition without one.
func orderKey(r *record.Record) string {
	if r.Key == nil {
		return "\x00partition:" + strconv.Itoa(int(r.Partition))
	}
	return string(r.Key)
}

func (e *Engine) writeSink(n *node, in <-chan []*record.Record) {
	for batch := range in {
		if err := n.sink.Write(e.hard, batch); err != nil {
			return // a hard stop: the rest is never acknowledged, so never committed
		}
	}
}
