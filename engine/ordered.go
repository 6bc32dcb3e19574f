package engine

import (
	"context"
	"sync"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// Under at-least-once a stateful stage's changes reach its changelog only after the outputs
// of the same record are done. Otherwise a crash between the two could leave a change in the
// changelog whose output was never written: an aggregate's window closed and tombstoned, its
// result lost, and the record that closed it, read again, finding it gone. Written after, a
// crash leaves the change out, the restored store as before the record, and the record read
// again does it all again (its outputs twice, as at-least-once allows).
//
// A key's changes must also reach the changelog in the order the stage made them (compaction
// keeps the last), so they wait in one queue per stage, in the order records left it, and
// leave it in that order: a change whose outputs are slow holds back those made after it.
// Under exactly-once none of this is needed: outputs and changes commit together.
type changeQueue struct {
	to   *node           // the changelog node
	hard context.Context // the engine's: a send gives up at a hard stop

	send    sync.Mutex // held while entries leave, so that they leave in order
	mu      sync.Mutex // guards pending
	pending []*changeEntry
	closed  bool // the changelog node's input is closed: nothing more is sent
}

// changeEntry is one record's changes, waiting for its outputs.
type changeEntry struct {
	q       *changeQueue
	changes []*record.Record
	done    bool
}

// Settle implements record.Settler: the entry's outputs are all done; it and the entries
// done behind it leave, unless an earlier one still waits.
func (c *changeEntry) Settle(uint64) {
	q := c.q
	q.send.Lock()
	defer q.send.Unlock()
	q.mu.Lock()
	c.done = true
	var ready []*record.Record
	for len(q.pending) > 0 && q.pending[0].done {
		ready = append(ready, q.pending[0].changes...)
		q.pending[0] = nil
		q.pending = q.pending[1:]
	}
	q.mu.Unlock()
	if len(ready) > 0 && !q.closed {
		q.to.send(q.hard, ready)
	}
}

// close stops sending, once a send under way is over: what still waits is never written, so
// its records are never done (a stop at once: they are read again).
func (q *changeQueue) close() {
	q.send.Lock()
	q.closed = true
	q.send.Unlock()
}

// routeOrdered is route for a stateful stage under at-least-once: the record's outputs count
// on a tracker of their own, whose end lets its changes go to the changelog, in order.
func (e *Engine) routeOrdered(n *node, rec *record.Record, outs []stages.Output, bufs [][]*record.Record, c *tally) {
	var changes []*record.Record
	copies := 0
	for _, o := range outs {
		if o.Port == stages.ChangelogPort {
			changes = append(changes, o.Rec)
		} else {
			copies += len(n.ports[o.Port])
		}
	}
	c.emitted += int64(len(outs) - len(changes))
	entry := &changeEntry{q: n.changes, changes: changes}
	switch {
	case len(changes) == 0 && copies == 0:
		if !rec.Tick {
			c.dropped++
		}
		rec.Track.Done()
		return
	case len(changes) == 0:
		rec.Track.Add(copies - 1)
	default:
		// The record's own count becomes its changes'; its outputs count on the entry.
		rec.Track.Add(len(changes) - 1)
		track := record.NewTracker(entry, 0)
		if copies > 0 {
			track.Add(copies - 1)
		}
		for _, o := range outs {
			if o.Port != stages.ChangelogPort {
				o.Rec.Track = track
			}
		}
		n.changes.mu.Lock()
		n.changes.pending = append(n.changes.pending, entry)
		n.changes.mu.Unlock()
		if copies == 0 {
			track.Done() // nothing to wait for, but earlier records' changes
		}
	}
	for _, o := range outs {
		if o.Port == stages.ChangelogPort {
			continue
		}
		for j, t := range n.ports[o.Port] {
			r := o.Rec
			if j > 0 {
				r = o.Rec.Clone()
			}
			bufs[t] = append(bufs[t], r)
		}
	}
}
