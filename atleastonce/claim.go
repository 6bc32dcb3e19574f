package atleastonce

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// claimReader is one assigned partition being read. Whenever it waits, it reads the claim's
// channel: a claim is told it is revoked only by the close of that channel, and a revoked
// partition must drain and commit well within the rebalance timeout. What it reads goes
// into the ledger and a queue, and the queue goes to the pipeline in batches. Reading is
// bounded by pausing the partition, never by leaving the channel unread (sarama drops a
// subscription that is not read): see pace. Once paused, only what the client had already
// fetched still arrives; what comes while the partition is over its bounds is held aside,
// outside the ledger, until there is room for it.
type claimReader struct {
	k       *Source
	claim   kafkaio.Claim
	ledger  *Ledger
	part    partKey
	log     *slog.Logger
	queue   []*record.Record // read and in the ledger, not yet handed on: queue[queueAt:]
	queueAt int
	// held is what was read over the bounds, not in the ledger yet, in order: the batches as
	// they came (not copied: a paused partition may still get a fetch or two), from
	// held[0][heldAt].
	held    [][]kafkaio.Message
	heldAt  int
	start   int64 // the first offset read, -1 before
	revoked bool
	paused  bool
}

// batchMax is the most records handed to the pipeline at once.
const batchMax = 512

// msgs is the claim's channel, or nil once it is closed (so that a select ignores it).
func (c *claimReader) msgs() <-chan []kafkaio.Message {
	if c.revoked {
		return nil
	}
	return c.claim.Messages()
}

// read takes in what a receive from the channel gave: messages are queued, or held while the
// partition is over its bounds; a close is the revoke.
func (c *claimReader) read(batch []kafkaio.Message, ok bool) {
	if !ok {
		c.revoked = true
		return
	}
	if c.start < 0 && len(batch) > 0 {
		c.start = batch[0].Offset
	}
	now := time.Now()
	for i := range batch {
		if len(c.held) > 0 || c.over() {
			c.held = append(c.held, batch[i:])
			return
		}
		c.queue = append(c.queue, newRecord(&batch[i], c.ledger, now))
	}
}

// over reports a partition at its bounds: max_pending records, or the budget spent.
func (c *claimReader) over() bool {
	return c.ledger.Pending() >= c.k.cfg.MaxPending || c.k.budget.spent()
}

// admitHeld queues the held messages there is room for now, in order.
func (c *claimReader) admitHeld() {
	now := time.Now()
	for len(c.held) > 0 && !c.over() {
		front := c.held[0]
		c.queue = append(c.queue, newRecord(&front[c.heldAt], c.ledger, now))
		front[c.heldAt] = kafkaio.Message{} // its bytes are the record's now
		if c.heldAt++; c.heldAt == len(front) {
			c.held[0] = nil
			c.held, c.heldAt = c.held[1:], 0
		}
	}
	if len(c.held) == 0 {
		c.held = nil
	}
}

// compact drops the first at elements of s once they are all of it or half of it, so that a
// queue taken from the front does not grow with what went through it.
func compact[T any](s []T, at int) ([]T, int) {
	if at == len(s) {
		return s[:0], 0
	}
	if at < len(s)/2 {
		return s, at
	}
	n := copy(s, s[at:])
	clear(s[n:])
	return s[:n], 0
}

// readAvailable queues what is held and what the channel holds now, up to a batch.
func (c *claimReader) readAvailable() {
	c.admitHeld()
	for c.queued() < batchMax && !c.revoked {
		select {
		case batch, ok := <-c.msgs():
			c.read(batch, ok)
		default:
			return
		}
	}
}

func (c *claimReader) queued() int { return len(c.queue) - c.queueAt }

// pace pauses the partition when its pending records reach max_pending or the process's
// byte budget is spent, and resumes it once both are down to half. The low mark leaves the
// pipeline work while the next fetch comes: a resumed partition waits a fetch round trip for
// its records (fetch_max_wait, when the fetch under way holds nothing), and resuming at the
// last record would stall it that long every time. It returns the channels that close at the
// next change of either, for a paused claim to wait on.
func (c *claimReader) pace() (pendingChanged, budgetChanged <-chan struct{}) {
	k := c.k
	c.admitHeld()
	pending, pendingChanged := c.ledger.Watch()
	free, budgetChanged := k.budget.watch()
	switch {
	case c.over() || len(c.held) > 0:
		c.pause()
	case c.paused && pending <= k.cfg.MaxPending/2 && free:
		c.resume()
	}
	if !c.paused {
		return nil, nil
	}
	return pendingChanged, budgetChanged
}

func (c *claimReader) pause() {
	if !c.paused {
		c.k.group.Pause(c.part.topic, c.part.partition)
		c.paused = true
	}
}

func (c *claimReader) resume() {
	if c.paused {
		c.k.group.Resume(c.part.topic, c.part.partition)
		c.paused = false
	}
}

// consume reads the claim until it is revoked, the session ends or the pipeline stops,
// handing what it reads to the pipeline in batches.
func (c *claimReader) consume(in sources.Intake) {
	k := c.k
	ctx := c.claim.Context()
	c.start = -1
	defer c.release()
	for !c.revoked && ctx.Err() == nil && !c.stopped(in) {
		c.readAvailable()
		if c.queued() == 0 {
			c.wait(ctx, in, nil)
			continue
		}
		batch := append(make([]*record.Record, 0, batchMax), c.queue[c.queueAt:c.queueAt+min(batchMax, c.queued())]...)
		raise(&k.mostPending, int64(c.ledger.Pending()))
		c.ledger.SetOffsets(c.start, c.claim.HighWaterMark())
		if !c.wait(ctx, in, batch) {
			continue // revoked or ending: the loop's test says which
		}
		clear(c.queue[c.queueAt : c.queueAt+len(batch)])
		c.queue, c.queueAt = compact(c.queue, c.queueAt+len(batch))
	}
}

// wait hands batch to the pipeline (true), or with no batch waits for a message to come; all
// the while it reads the channel and paces the partition. It gives up (false) when the claim
// is revoked, the session ends or the pipeline stops.
func (c *claimReader) wait(ctx context.Context, in sources.Intake, batch []*record.Record) bool {
	var give chan<- []*record.Record
	if batch != nil {
		give = in.C
	}
	for {
		pendingChanged, budgetChanged := c.pace()
		if batch == nil && c.queued() > 0 {
			return true
		}
		select {
		case give <- batch:
			return true
		case msgs, ok := <-c.msgs():
			if c.read(msgs, ok); c.revoked {
				return false
			}
		case <-pendingChanged:
		case <-budgetChanged:
		case <-ctx.Done():
			return false
		case <-in.Stopped:
			return false
		}
	}
}

func (c *claimReader) stopped(in sources.Intake) bool {
	select {
	case <-in.Stopped:
		return true
	default:
		return false
	}
}

// release ends the claim's reading: the queued records were never handed on, so the ledger
// forgets them (they are neither done nor waited for), and the partition is resumed, so that
// a later claim of it starts unpaused.
func (c *claimReader) release() {
	c.ledger.Abandon(c.queued())
	c.queue, c.queueAt, c.held, c.heldAt = nil, 0, nil, 0
	c.resume()
}

// drain lets what is in flight finish, up to the drain timeout, unless the pipeline failed or
// stops at once.
func (c *claimReader) drain() {
	k := c.k
	deadline := time.NewTimer(k.cfg.DrainTimeout)
	defer deadline.Stop()
	for !errors.Is(context.Cause(c.claim.Context()), sources.ErrAbort) {
		pending, changed := c.ledger.Watch()
		if pending == 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			c.log.Warn("drain timeout: records still in flight will be delivered again", "in_flight", c.ledger.Pending(), "drain_timeout", k.cfg.DrainTimeout)
			return
		case <-k.in.Stopped:
			c.log.Warn("stopped at once: records still in flight will be delivered again", "in_flight", c.ledger.Pending())
			return
		}
	}
}

func newRecord(m *kafkaio.Message, l *Ledger, now time.Time) *record.Record {
	return record.Tracked(record.Record{Key: m.Key, Value: m.Value, Headers: m.Headers, Timestamp: m.Timestamp,
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, OrigKey: m.Key, OrigHeaders: m.Headers},
		l, l.Add(m.Offset, now, recordSize(m)))
}

// recordSize is what a record weighs against max_pending_bytes: its key, value and headers,
// and RecordOverhead.
func recordSize(m *kafkaio.Message) int64 {
	n := len(m.Key) + len(m.Value) + RecordOverhead
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// RecordOverhead estimates what the engine holds of a record besides its bytes: the record,
// its place in the ledger and the queues, and its decoded body (measured: 300 to 700 bytes
// for a 200-byte JSON order, depending on the stage it is at).
const RecordOverhead = 512
