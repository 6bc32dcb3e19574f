package exactlyonce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// Source is the consumer-group source of `delivery: exactly_once`: it reads in transactions.
// Each one polls for commit_interval (or until max_pending records), hands the records on,
// waits until every one is settled — its outputs and DLQ records written in the transaction
// by the sinks — and commits the outputs and the offsets together. A revoke, a lost
// partition, a failed write, a stop on error, or a transaction still open at 80% of
// transaction_timeout aborts it instead: its records are read again from the committed
// offsets, and what of them is still in the pipeline is waited for outside a transaction
// (an enrichment outage waits there, not in a transaction the broker would time out).
type Source struct {
	cfg  *sources.Config
	log  *slog.Logger
	sess *kafkaio.TxnSession
	cur  atomic.Pointer[Batch]
	// waiting is what the open transaction's end waits for (waits.go), nil between;
	// abortRun the transactions aborted in a row, nil after a commit.
	waiting  atomic.Pointer[endWait]
	abortRun atomic.Pointer[abortRun]

	joined     atomic.Bool
	began      sources.JoinClock // the stats say a long join
	assigned   atomic.Int64
	rebalances atomic.Int64

	partsMu   sync.Mutex
	parts     map[kafkaio.Partition]bool // assigned now: their lag is exported
	releasing []kafkaio.Partition        // revoked, to be told to the state hooks (state.go)
	lastTick  time.Time                  // when ticks were last handed on (state.go)
	hooks     atomic.Pointer[stateHooks]

	abortsMu sync.Mutex
	abortsBy map[string]int64 // transactions aborted, by reason
}

// TransactionalID is the producer's transactional.id: stable across restarts with an
// instance_id, so that a restarted instance fences its predecessor and aborts what that one
// left open; without one, unique to the process (a crashed one's open transaction then ends
// at its timeout).
func TransactionalID(c *sources.Config) string {
	if c.InstanceID != "" {
		return c.Group + "-" + c.InstanceID
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%s-%d", c.Group, host, os.Getpid())
}

// NewSource prepares the source on the connection conn, its transactions' producer made of
// p (the sinks write through its session); Run joins the group.
func NewSource(c *sources.Config, conn *kafkaio.Franz, p kafkaio.ProducerConfig, log *slog.Logger) (*Source, error) {
	k := &Source{cfg: c, log: log}
	group := c.GroupConfig()
	group.ReadCommitted = true // records of aborted transactions must never be processed
	sess, err := conn.TxnSession(kafkaio.TxnConfig{Group: group, Producer: p, TransactionalID: TransactionalID(c),
		TransactionTimeout: c.TransactionTimeout, OnAssigned: k.onAssigned, OnRevoked: k.onRevoked}, log)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	k.sess = sess
	return k, nil
}

// Session is the transactions' session, through which the sinks write.
func (k *Source) Session() *kafkaio.TxnSession { return k.sess }

func (k *Source) onAssigned(parts map[string][]int32) {
	n := 0
	for _, ps := range parts {
		n += len(ps)
	}
	if k.joined.Swap(true) {
		k.rebalances.Add(1)
	}
	k.assigned.Add(int64(n))
	k.partsMu.Lock()
	if k.parts == nil {
		k.parts = map[kafkaio.Partition]bool{}
	}
	for topic, ps := range parts {
		for _, p := range ps {
			k.parts[kafkaio.Partition{Topic: topic, Partition: p}] = true
		}
	}
	k.partsMu.Unlock()
	k.claimed(parts)
	k.log.Info("partitions assigned", "group", k.cfg.Group, "partitions", fmt.Sprint(parts))
}

func (k *Source) onRevoked(parts map[string][]int32) {
	k.revoked(parts)
	k.partsMu.Lock()
	defer k.partsMu.Unlock()
	for topic, ps := range parts {
		k.assigned.Add(-int64(len(ps)))
		for _, p := range ps {
			delete(k.parts, kafkaio.Partition{Topic: topic, Partition: p})
		}
	}
}

// Run reads in transactions until ctx ends: a graceful stop lets the open transaction's
// records finish within drain_timeout and commits it; a stop on error (ErrAbort) or at once
// (in.Stopped) aborts it without waiting for them.
// An aborted transaction is read again after a backoff, whatever aborted it, so the world's
// faults are waited out; only a fenced producer or an error the failure table says stops
// (no right to the transactional id) ends the run. It returns with the session closed.
func (k *Source) Run(ctx context.Context, in sources.Intake) error {
	k.began.Start()
	defer func() { k.sess.Close() }() // Renew replaces the client: close the last one
	k.log.Info("exactly once: reading in transactions", "group", k.cfg.Group, "transactional_id", TransactionalID(k.cfg),
		"commit_interval", k.cfg.CommitInterval, "transaction_timeout", k.cfg.TransactionTimeout)
	if in.State != nil {
		k.hooks.Store(&stateHooks{in.State})
	}
	defer k.release()
	aborts := 0
	for ctx.Err() == nil && !stopped(in) {
		k.release()
		b, err := k.fill(ctx, in)
		if b == nil {
			if err != nil {
				return err
			}
			continue
		}
		end, endErr := k.finish(ctx, in, b)
		if err = errors.Join(err, endErr); err != nil {
			return err
		}
		if end.committed {
			aborts = 0
			k.abortRun.Store(nil)
			continue
		}
		aborts++
		k.aborting(aborts, end.why)
		k.log.Warn("transaction aborted: its records will be read again from the committed offsets", "why", end.why, "reason", end.reason, "aborts_in_a_row", aborts)
		select {
		case <-time.After(failure.Backoff(aborts, 100*time.Millisecond, 5*time.Second, 2, 0.2)):
		case <-ctx.Done():
		case <-in.Stopped:
		}
	}
	return nil
}

func (k *Source) aborted(reason string) {
	k.abortsMu.Lock()
	defer k.abortsMu.Unlock()
	if k.abortsBy == nil {
		k.abortsBy = map[string]int64{}
	}
	k.abortsBy[reason]++
}

// fill polls for one transaction: from the first record read, for commit_interval or until
// max_pending records, handing each poll's records on. It returns nil when ctx ended before
// anything was read. A batch the pipeline did not take fails the transaction.
func (k *Source) fill(ctx context.Context, in sources.Intake) (*Batch, error) {
	var b *Batch
	var end time.Time
	read := 0 // records in b: none is committed before b is, so max_pending bounds them all
	begin := func() error {
		x, err := k.sess.Begin(k.cfg.TransactionTimeout - k.cfg.TransactionTimeout/5)
		if err != nil {
			return err
		}
		b = newBatch(x)
		k.cur.Store(b)
		end = time.Now().Add(k.cfg.CommitInterval)
		return nil
	}
	for ctx.Err() == nil {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		switch {
		case b != nil:
			pollCtx, cancel = context.WithDeadline(ctx, end)
		case in.Ticks != nil: // idle, ticks still come, each in a transaction of its own
			pollCtx, cancel = context.WithTimeout(ctx, in.Ticks.Every)
		}
		msgs, errs, closed := k.sess.Poll(pollCtx, max(1, k.cfg.MaxPending-read))
		cancel()
		if closed {
			return b, errors.New("source: the Kafka client closed")
		}
		for _, err := range errs {
			k.log.Warn("fetch", "err", err)
		}
		if len(msgs) > 0 {
			if b == nil {
				if err := begin(); err != nil {
					return nil, err
				}
			}
			recs := make([]*record.Record, len(msgs))
			for i := range msgs {
				recs[i] = toRecord(&msgs[i], b)
			}
			b.Add(len(recs))
			read += len(recs)
			if err := in.Deliver(ctx, recs); err != nil {
				b.Fail(fmt.Errorf("records read were not taken by the pipeline: %w", err))
				for range recs {
					b.Settle(0)
				}
				return b, nil
			}
		}
		if parts := k.tickable(in.Ticks); len(parts) > 0 && ctx.Err() == nil {
			if b == nil {
				if err := begin(); err != nil {
					return nil, err
				}
			}
			if err := k.ticks(ctx, in, b, parts); err != nil {
				b.Fail(fmt.Errorf("ticks were not taken by the pipeline: %w", err))
				return b, nil
			}
			if read == 0 {
				return b, nil // a transaction of ticks alone
			}
		}
		if b != nil && (b.Ended() || !time.Now().Before(end) || read >= k.cfg.MaxPending) {
			return b, nil
		}
	}
	return b, nil
}

// toRecord is m as the pipeline takes it, settled with its transaction's Batch.
func toRecord(m *kafkaio.Message, b *Batch) *record.Record {
	rec := &record.Record{Key: m.Key, Value: m.Value, Headers: m.Headers, Timestamp: m.Timestamp,
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, OrigKey: m.Key, OrigHeaders: m.Headers}
	rec.Track = record.NewTracker(b, 0)
	return rec
}

// ending is how a transaction ended: committed, or aborted and why.
type ending struct {
	committed   bool
	why, reason string
}

// finish ends b: a commit once its records are all settled; an abort when it cannot be,
// after which the records of b still in the pipeline are waited for. An end the broker did
// not confirm (a dropped connection, a timeout) counts as an abort: a new client reads again
// from the offsets the broker holds, which are past b's records if the commit went through.
func (k *Source) finish(ctx context.Context, in sources.Intake, b *Batch) (ending, error) {
	k.waitFor(waitRecords)
	end := k.settle(ctx, in, b)
	endCtx, cancel := context.WithTimeout(context.Background(), k.cfg.RebalanceTimeout)
	defer cancel()
	k.waitFor(waitEnd)
	committed, err := k.sess.End(endCtx, b.Transaction, end.why == "")
	k.waitFor("")
	k.cur.CompareAndSwap(b, nil)
	unsure := err != nil
	defer func() { k.ended(committed, unsure) }() // after the wait below for what is in the pipeline
	if err != nil {
		if err = k.recover(b, err, &end); err != nil {
			return end, err
		}
	}
	if committed {
		return ending{committed: true}, nil
	}
	if end.why == "" {
		end.why, end.reason = "the group rebalanced or the offsets could not be committed", sources.AbortCommit
		if b.Ended() {
			end.reason = sources.AbortRevoke
		}
	}
	k.aborted(end.reason)
	// A pipeline stopped at once gives its records up unfinished: none of them will settle,
	// and nothing of b is committed, so the next run reads them all again.
	if n := b.Pending(); n > 0 && context.Cause(ctx) != sources.ErrAbort && !stopped(in) {
		k.log.Warn("waiting outside a transaction for the aborted transaction's records still in the pipeline (a stage waits?)", "records", n, "why", end.why)
		for b.Pending() > 0 {
			select {
			case <-b.Drained():
			case <-ctx.Done():
				return end, nil
			case <-in.Stopped:
				return end, nil
			}
		}
	}
	return end, nil
}

// recover handles a transaction that could not end: the broker timed it out while its
// commit waited for a rebalance, or its end was not confirmed. A new client takes the
// transactional id back (aborting what the broker still holds open) and reads from the
// offsets the broker holds. A fenced producer, or an error the failure table says stops,
// is returned: the run stops, uncommitted.
func (k *Source) recover(b *Batch, err error, end *ending) error {
	cause := err
	if te := (*kafkaio.TxnError)(nil); errors.As(err, &te) {
		cause = te.Err // without the hint of another instance: see below
	}
	switch {
	case epochFenced(err) && b.Age() >= k.cfg.TransactionTimeout:
		// No other instance fenced us: the broker aborted the transaction at its timeout and
		// bumped the producer's epoch while the commit waited. franz-go holds a commit's
		// offsets until the group has joined and synced, and a rebalance waits out a dead
		// member's session_timeout, longer than transaction_timeout.
		k.log.Warn("the broker aborted the transaction at transaction_timeout while its commit waited for a rebalance; reconnecting",
			"open_for", b.Age().Round(time.Millisecond), "err", cause)
		if end.why == "" {
			end.why = "the broker aborted it at transaction_timeout while its commit waited for a rebalance"
		}
	case failure.Judge(failure.EndTxn, "source", "", err).Outcome == failure.Stop:
		return err
	default:
		text := kafkaio.Explain(cause, k.joined.Load())
		k.log.Warn("the transaction's end was not confirmed: reconnecting; its records are read again from the offsets the broker holds",
			"err", text)
		if end.why == "" {
			end.why = "its end was not confirmed: " + text
		}
	}
	if end.reason == "" {
		end.reason = sources.AbortCommit
	}
	return k.sess.Renew()
}

// epochFenced reports whether err says the broker no longer takes this producer's epoch:
// another producer took the transactional id, or the broker timed the transaction out.
func epochFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.InvalidProducerIDMapping)
}

// settle waits until every record of b is settled; otherwise it says why b must abort. A
// stop at once (in.Stopped) ends the wait at once: the engine's stages give their records up
// unfinished, so neither the drain nor the transaction's deadline would see them done.
func (k *Source) settle(ctx context.Context, in sources.Intake, b *Batch) ending {
	expire := time.NewTimer(time.Until(b.Expires()))
	defer expire.Stop()
	done := ctx.Done()
	var drain <-chan time.Time
	for b.Pending() > 0 {
		select {
		case <-b.Drained():
		case <-b.Over():
			return overEnding(b)
		case <-expire.C:
			return ending{why: fmt.Sprintf("%d records were not done within 80%% of transaction_timeout (%v)", b.Pending(), k.cfg.TransactionTimeout),
				reason: sources.AbortDeadline}
		case <-done:
			if context.Cause(ctx) == sources.ErrAbort {
				return ending{why: "the pipeline stopped on an error", reason: sources.AbortStop}
			}
			done, drain = nil, time.After(k.cfg.DrainTimeout)
		case <-drain:
			return ending{why: fmt.Sprintf("stopping: %d records were not done within drain_timeout", b.Pending()), reason: sources.AbortStop}
		case <-in.Stopped:
			return ending{why: fmt.Sprintf("stopped at once: %d records were not done", b.Pending()), reason: sources.AbortStop}
		}
	}
	if b.Failure() != nil || b.Ended() {
		return overEnding(b)
	}
	return ending{}
}

// stopped reports whether the pipeline has stopped at once.
func stopped(in sources.Intake) bool {
	select {
	case <-in.Stopped:
		return true
	default:
		return false
	}
}

// overEnding is why a Batch that is over, or failed, aborts.
func overEnding(b *Batch) ending {
	if f := b.Failure(); f != nil {
		return ending{why: "a write failed: " + f.Error(), reason: sources.AbortWrite}
	}
	return ending{why: "partitions were revoked or lost", reason: sources.AbortRevoke}
}

// Stats reads the counters; Pending is the open transaction's records not yet done.
func (k *Source) Stats() sources.Stats {
	commits, revokes := k.sess.Stats()
	s := sources.Stats{Commits: commits, Revokes: revokes, Rebalances: k.rebalances.Load(), Assigned: k.assigned.Load(), Joined: k.joined.Load()}
	k.abortsMu.Lock()
	s.AbortsBy = maps.Clone(k.abortsBy)
	k.abortsMu.Unlock()
	for _, n := range s.AbortsBy {
		s.Aborts += n
	}
	if b := k.cur.Load(); b != nil {
		s.Pending = b.Pending()
	}
	k.statWait(&s)
	k.cfg.JoinWait(&s, &k.began, time.Now())
	k.partsMu.Lock()
	parts := slices.Collect(maps.Keys(k.parts))
	k.partsMu.Unlock()
	s.Partitions = map[string]sources.PartitionStats{}
	for p, pos := range k.sess.Positions(parts) {
		ps := sources.PartitionStats{Topic: p.Topic, Partition: p.Partition, CommitPoint: pos.Committed, Position: pos.Committed, HighWater: pos.HighWater}
		if pos.Committed >= 0 && pos.HighWater >= 0 {
			ps.Lag = max(pos.HighWater-pos.Committed, 0)
		}
		s.Partitions[fmt.Sprintf("%s/%d", p.Topic, p.Partition)] = ps
	}
	return s
}
