package sources

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// claimReader is one assigned partition being read. Sarama tells a claim it is revoked (a
// cooperative rebalance) only by closing its Messages channel, so every wait of a claim —
// paused at max_pending, or handing a batch to a full pipeline — keeps reading the channel:
// what it reads meanwhile is held for later, and a close ends the wait at once, so that the
// revoked partition drains and commits well within the rebalance timeout.
type claimReader struct {
	h       *handler
	sess    sarama.ConsumerGroupSession
	claim   sarama.ConsumerGroupClaim
	ledger  *Ledger
	part    partitionKey
	log     *slog.Logger
	held    []*sarama.ConsumerMessage // read while waiting, not yet in the ledger
	revoked bool
	paused  bool
}

// holdMax is how many messages a waiting claim reads before it pauses its partition; once
// paused, only what the consumer had fetched still arrives.
const holdMax = 256

// msgs is the claim's channel, or nil once it is closed (so that a select ignores it).
func (c *claimReader) msgs() <-chan *sarama.ConsumerMessage {
	if c.revoked {
		return nil
	}
	return c.claim.Messages()
}

// hold keeps a message read while waiting, or notes the revoke when the channel closed.
func (c *claimReader) hold(m *sarama.ConsumerMessage, ok bool) {
	if !ok {
		c.revoked = true
		return
	}
	c.held = append(c.held, m)
	if len(c.held) >= holdMax {
		c.pause()
	}
}

func (c *claimReader) pause() {
	if !c.paused {
		c.h.k.group.Pause(map[string][]int32{c.part.topic: {c.part.partition}})
		c.paused = true
	}
}

func (c *claimReader) resume() {
	if c.paused {
		c.h.k.group.Resume(map[string][]int32{c.part.topic: {c.part.partition}})
		c.paused = false
	}
}

// next returns the next message, waiting for it; false when the claim ends.
func (c *claimReader) next(ctx context.Context) (*sarama.ConsumerMessage, bool) {
	if m, ok := c.poll(); ok || c.revoked {
		return m, ok
	}
	select {
	case m, ok := <-c.msgs():
		c.revoked = !ok
		return m, ok
	case <-ctx.Done():
		return nil, false
	}
}

// poll returns the next message if one is there.
func (c *claimReader) poll() (*sarama.ConsumerMessage, bool) {
	if len(c.held) > 0 {
		m := c.held[0]
		c.held = c.held[1:]
		return m, true
	}
	select {
	case m, ok := <-c.msgs():
		c.revoked = !ok
		return m, ok
	default:
		return nil, false
	}
}

// consume reads the claim until it is revoked, the session ends or the pipeline stops,
// delivering batches and keeping the ledger within max_pending.
func (c *claimReader) consume(in Intake) {
	k := c.h.k
	max := k.cfg.MaxPending
	ctx := c.sess.Context()
	defer c.resume()
	for {
		if ctx.Err() != nil || c.stopped(in) {
			return // the session ended, or the pipeline stopped: read nothing more
		}
		if c.ledger.Pending() >= max && !c.waitForRoom(ctx) {
			return
		}
		if k.budget.spent() && !c.waitForBudget(ctx) {
			return
		}
		msg, ok := c.next(ctx)
		if !ok {
			return
		}
		now := time.Now()
		batch := make([]*record.Record, 0, 64)
		batch = append(batch, newRecord(msg, c.ledger, now))
		for len(batch) < cap(batch) && c.ledger.Pending() < max && !k.budget.spent() {
			m, ok := c.poll()
			if !ok {
				break
			}
			batch = append(batch, newRecord(m, c.ledger, now))
		}
		raise(&k.mostPending, int64(c.ledger.Pending()))
		c.ledger.SetOffsets(c.claim.InitialOffset(), c.claim.HighWaterMarkOffset())
		if !c.handOn(ctx, in, batch) {
			c.ledger.Abandon(len(batch)) // not handed on: not done, and not waited for
			return
		}
		if c.revoked {
			return
		}
	}
}

func (c *claimReader) stopped(in Intake) bool {
	select {
	case <-in.Stopped:
		return true
	default:
		return false
	}
}

// handOn gives batch to the pipeline. While the pipeline is full it keeps watching the claim;
// it gives up (false) when the claim is revoked, the session ends or the pipeline stops.
func (c *claimReader) handOn(ctx context.Context, in Intake, batch []*record.Record) bool {
	select {
	case in.C <- batch:
		return true
	default:
	}
	for {
		select {
		case in.C <- batch:
			c.resume()
			return true
		case m, ok := <-c.msgs():
			if c.hold(m, ok); c.revoked {
				return false
			}
		case <-ctx.Done():
			return false
		case <-in.Stopped:
			return false
		}
	}
}

// waitForRoom pauses the partition until its ledger is down to half of max_pending, or the
// claim ends (false).
func (c *claimReader) waitForRoom(ctx context.Context) bool {
	return c.waitPaused(ctx, func() (bool, <-chan struct{}) {
		pending, changed := c.ledger.Watch()
		return pending <= c.h.k.cfg.MaxPending/2, changed
	})
}

// waitForBudget pauses the partition until half of max_pending_bytes is free again, or the
// claim ends (false).
func (c *claimReader) waitForBudget(ctx context.Context) bool {
	return c.waitPaused(ctx, c.h.k.budget.watch)
}

// waitPaused pauses the partition until ready says so, holding what the claim still reads
// meanwhile; it gives up (false) when the claim is revoked or the session ends. ready returns
// its answer and the channel closed at its next change, read together, so that no change is
// missed between the two.
func (c *claimReader) waitPaused(ctx context.Context, ready func() (bool, <-chan struct{})) bool {
	c.pause()
	defer c.resume()
	for {
		done, changed := ready()
		if done {
			return true
		}
		select {
		case <-changed:
		case m, ok := <-c.msgs():
			if c.hold(m, ok); c.revoked {
				return false
			}
		case <-ctx.Done():
			return false
		}
	}
}

// drain lets what is in flight finish, up to the drain timeout, unless the pipeline failed.
func (c *claimReader) drain() {
	k := c.h.k
	deadline := time.NewTimer(k.cfg.DrainTimeout)
	defer deadline.Stop()
	for !errors.Is(context.Cause(c.sess.Context()), ErrAbort) {
		pending, changed := c.ledger.Watch()
		if pending == 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			c.log.Warn("drain timeout: records still in flight will be delivered again", "in_flight", c.ledger.Pending(), "drain_timeout", k.cfg.DrainTimeout)
			return
		}
	}
}

func newRecord(m *sarama.ConsumerMessage, l *Ledger, now time.Time) *record.Record {
	var headers []record.Header
	if len(m.Headers) > 0 {
		headers = make([]record.Header, len(m.Headers))
		for i, h := range m.Headers {
			headers[i] = record.Header{Key: string(h.Key), Value: h.Value}
		}
	}
	rec := &record.Record{Key: m.Key, Value: m.Value, Headers: headers, Timestamp: m.Timestamp,
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, OrigKey: m.Key, OrigHeaders: headers}
	rec.Track = record.NewTracker(l, l.Add(m.Offset, now, recordSize(m)))
	return rec
}

// recordSize is what a record weighs against max_pending_bytes: its key, value and headers.
func recordSize(m *sarama.ConsumerMessage) int64 {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}
