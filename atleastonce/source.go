// Package atleastonce is the delivery mode `delivery: at_least_once` (the default): the
// source reads a consumer group's partitions and commits, per partition, the offset after the
// longest prefix of records that are done (ledger.go); the sinks write through producers of
// their own and keep each output partition's order through refused writes (guard.go). A
// record is read again after a crash or a rebalance unless its offset was committed: nothing
// is lost, and duplicates are possible.
package atleastonce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// Source is the consumer-group source. Per claimed partition it keeps a Ledger of the
// records it delivered; it commits the offset after the longest done prefix, periodically
// and whenever a partition is revoked or the source stops, and it pauses a partition whose
// ledger holds max_pending records, and every partition while max_pending_bytes are held.
type Source struct {
	cfg   *sources.Config
	group kafkaio.Group
	log   *slog.Logger
	in    sources.Intake

	mu      sync.Mutex
	ledgers map[partKey]*Ledger

	budget      *Budget      // max_pending_bytes, shared by the claims
	mostPending atomic.Int64 // the most records any ledger held at once
	commits     atomic.Int64
	// failing is when the commits failing in a row began (nil: the last one went through),
	// and the last one's error: the stats say it.
	failing    atomic.Pointer[commitFailure]
	rebalances atomic.Int64
	generation atomic.Int32 // the group generation last seen
	assigned   atomic.Int64 // partitions currently claimed
	joined     atomic.Bool
	began      sources.JoinClock // the stats say a long join
}

// NewSource prepares the source on group; Run joins.
func NewSource(cfg *sources.Config, group kafkaio.Group, log *slog.Logger) *Source {
	return &Source{cfg: cfg, group: group, log: log, ledgers: map[partKey]*Ledger{}, budget: NewBudget(cfg.MaxPendingBytes)}
}

// Run consumes until ctx ends or a fatal error, handing batches to in. It returns after every
// claim has drained (within the drain timeout) and committed what is done.
func (k *Source) Run(ctx context.Context, in sources.Intake) error {
	k.in = in
	k.began.Start()
	var loops conc.WaitGroup
	loopCtx, stop := context.WithCancel(context.Background())
	loops.Go(func() { k.commitLoop(loopCtx) })
	loops.Go(func() { k.watchStalls(loopCtx) })
	err := k.group.Run(ctx, k)
	stop()
	loops.Wait()
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	return nil
}

// Joined counts a rebalance when the group generation moved since it was last seen.
func (k *Source) Joined(generation int32, member string, partitions map[string][]int32, fresh bool) {
	if prev := k.generation.Swap(generation); prev != 0 && prev != generation {
		k.rebalances.Add(1)
	}
	k.joined.Store(true)
	if fresh {
		k.log.Info("joined group", "group", k.cfg.Group, "member", member, "generation", generation, "claims", fmt.Sprint(partitions))
		return
	}
	k.log.Debug("rebalanced", "group", k.cfg.Group, "generation", generation, "claims", fmt.Sprint(partitions))
}

// Trouble logs what the group waits out.
func (k *Source) Trouble(err error) {
	var r *kafkaio.ResetError
	switch {
	case errors.As(err, &r) && r.Running:
		k.log.Error("records were deleted from the log (by retention?) before they were read; they are lost to this group, and the partition resumes at start: "+k.cfg.Start,
			"group", k.cfg.Group, "topic", r.Topic, "partition", r.Partition, "read_to", r.At, "log_start", r.LogStart)
	case errors.As(err, &r):
		k.log.Error("the committed offset is no longer in the log (records deleted by retention before they were read, or the topic recreated?): the records between are lost to this group; starting at start: "+k.cfg.Start,
			"topic", r.Topic, "partition", r.Partition, "group", k.cfg.Group, "committed", r.At, "log_start", r.LogStart, "log_end", r.LogEnd)
	default:
		k.log.Warn("consumer group", "group", k.cfg.Group, "err", err)
	}
}

// Room returns once the byte budget (max_pending_bytes) is half free, when it is spent, or
// ctx ends: the group then polls for no more records than it holds already.
func (k *Source) Room(ctx context.Context) {
	for k.budget.spent() {
		free, changed := k.budget.watch()
		if free {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// Claim reads one partition until it is revoked, lost or the source stops; then it lets what
// is in flight finish (within drain_timeout) and commits what is done, unless it was lost.
func (k *Source) Claim(claim kafkaio.Claim) {
	p := partKey{claim.Topic(), claim.Partition()}
	l := NewLedger(k.budget)
	k.mu.Lock()
	k.ledgers[p] = l
	k.mu.Unlock()
	k.assigned.Add(1)
	log := k.log.With("topic", p.topic, "partition", p.partition)
	log.Info("partition assigned")
	if h := k.in.State; h != nil {
		h.Claimed(p.topic, p.partition)
	}

	c := &claimReader{k: k, claim: claim, ledger: l, part: p, log: log}
	c.consume(k.in)
	switch {
	case claim.Lost():
		log.Warn("partition lost: its records in flight are not committed, and will be read again", "in_flight", l.Pending())
	default:
		if c.revoked {
			log.Info("partition revoked: finishing what is in flight", "in_flight", l.Pending())
		}
		c.drain()
		k.release(p, l, log)
	}
	if h := k.in.State; h != nil {
		h.Released(p.topic, p.partition, l.Pending() == 0)
	}
	l.Close()
	k.mu.Lock()
	delete(k.ledgers, p)
	k.mu.Unlock()
	k.assigned.Add(-1)
}

// release commits a partition's commit point as it lets it go.
func (k *Source) release(p partKey, l *Ledger, log *slog.Logger) {
	cp := l.CommitPoint()
	if cp < 0 {
		log.Info("partition released", "committed", "nothing done")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.cfg.CommitInterval+commitWait)
	defer cancel()
	if err := k.group.Commit(ctx, []kafkaio.Offset{{Topic: p.topic, Partition: p.partition, Offset: cp}}); err != nil {
		log.Warn("partition released, its commit failed: what is done since the last commit is read again", "committed", cp, "err", err)
		return
	}
	k.commits.Add(1)
	log.Info("partition released", "committed", cp)
}

// commitWait bounds a commit beyond the commit interval: a broker that does not answer must
// not hold a revoke past the rebalance timeout.
const commitWait = 10 * time.Second

// commitLoop commits the ledgers' commit points every commit interval.
func (k *Source) commitLoop(ctx context.Context) {
	t := time.NewTicker(k.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var offsets []kafkaio.Offset
		var ledgers []*Ledger
		k.mu.Lock()
		for p, l := range k.ledgers {
			if cp, ok := l.ToCommit(); ok {
				offsets = append(offsets, kafkaio.Offset{Topic: p.topic, Partition: p.partition, Offset: cp})
				ledgers = append(ledgers, l)
			}
		}
		k.mu.Unlock()
		if len(offsets) == 0 {
			continue
		}
		commitCtx, cancel := context.WithTimeout(ctx, k.cfg.CommitInterval+commitWait)
		began := time.Now()
		err := k.group.Commit(commitCtx, offsets)
		cancel()
		if err != nil {
			k.log.Warn("commit failed: it is sent again at the next interval", "group", k.cfg.Group, "err", err)
			f := &commitFailure{since: began, err: err}
			if prev := k.failing.Load(); prev != nil {
				f.since = prev.since
			}
			k.failing.Store(f)
			continue
		}
		k.failing.Store(nil)
		for i, l := range ledgers {
			l.Committed(offsets[i].Offset)
		}
		k.commits.Add(1)
	}
}

// commitFailure is a run of failed commits: since when, and the last error.
type commitFailure struct {
	since time.Time
	err   error
}

// statWait puts in s how long commits have failed in a row (the progress line and /healthz
// read it).
func (k *Source) statWait(s *sources.Stats, now time.Time) {
	f := k.failing.Load()
	if f == nil {
		return
	}
	s.WaitingFor = now.Sub(f.since)
	if s.WaitingFor >= sources.WaitSaid {
		s.Waiting = fmt.Sprintf("offset commits, failing for %v (is the group coordinator down or hung?): %v", s.WaitingFor.Round(time.Second), f.err)
	}
}

// stalled says whether a partition whose commit point has not moved for stuck is stalled.
func (k *Source) stalled(stuck time.Duration) bool {
	return k.cfg.StallTimeout > 0 && stuck >= k.cfg.StallTimeout
}

// watchStalls says, every commit interval, when a partition stalls and when it moves again.
// It is a loop of its own: a commit waits on the broker, and a hung broker is one way to stall.
func (k *Source) watchStalls(ctx context.Context) {
	t := time.NewTicker(k.cfg.CommitInterval)
	defer t.Stop()
	stalled := map[partKey]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			k.mu.Lock()
			for p, l := range k.ledgers {
				stuck, oldest := l.Stall(now)
				switch is := k.stalled(stuck); {
				case is && !stalled[p]:
					k.log.Error("partition stalled: its commit point has not moved while records wait; /healthz fails until it moves",
						"topic", p.topic, "partition", p.partition, "for", stuck.Round(time.Second).String(), "pending", l.Pending(),
						"oldest_read_ago", oldest.Round(time.Second).String(), "stall_timeout", k.cfg.StallTimeout.String())
					stalled[p] = true
				case !is && stalled[p]:
					k.log.Info("partition moves again", "topic", p.topic, "partition", p.partition)
					delete(stalled, p)
				}
			}
			k.mu.Unlock()
		}
	}
}

// Stats reads the counters.
func (k *Source) Stats() sources.Stats {
	s := sources.Stats{MostPending: k.mostPending.Load(), Commits: k.commits.Load(), Rebalances: k.rebalances.Load(),
		Assigned: k.assigned.Load(), Joined: k.joined.Load(), PendingBytes: k.budget.Used(), PeakPendingBytes: k.budget.Peak()}
	s.Partitions = map[string]sources.PartitionStats{}
	now := time.Now()
	k.statWait(&s, now)
	k.cfg.JoinWait(&s, &k.began, now)
	k.mu.Lock()
	for p, l := range k.ledgers {
		ps := sources.PartitionStats{Topic: p.topic, Partition: p.partition, Pending: l.Pending(), CommitPoint: l.CommitPoint()}
		ps.Lag, ps.HighWater, ps.Position = l.Lag()
		var stuck time.Duration
		stuck, ps.OldestPending = l.Stall(now)
		ps.Stalled = k.stalled(stuck)
		s.Pending += int64(ps.Pending)
		s.Partitions[fmt.Sprintf("%s/%d", p.topic, p.partition)] = ps
	}
	k.mu.Unlock()
	return s
}

// raise sets a to n when n is larger.
func raise(a *atomic.Int64, n int64) {
	for {
		old := a.Load()
		if n <= old || a.CompareAndSwap(old, n) {
			return
		}
	}
}
