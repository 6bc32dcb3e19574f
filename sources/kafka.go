package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/failure"
)

// ConsumerConfig adds the source's consumer settings to the connection's sarama config.
func ConsumerConfig(base *sarama.Config, c *Config) *sarama.Config {
	sc := *base
	strategy := map[string]sarama.BalanceStrategy{
		"cooperative-sticky": sarama.NewBalanceStrategyCooperativeSticky(),
		"sticky":             sarama.NewBalanceStrategySticky(),
		"range":              sarama.NewBalanceStrategyRange(),
		"round-robin":        sarama.NewBalanceStrategyRoundRobin(),
	}[c.Rebalance]
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
	if c.InstanceID != "" {
		sc.Consumer.Group.InstanceId = c.InstanceID
	}
	sc.Consumer.Group.Session.Timeout = c.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = c.HeartbeatInterval
	sc.Consumer.Group.Rebalance.Timeout = c.RebalanceTimeout
	sc.Net.ReadTimeout = c.RebalanceTimeout + 10*time.Second // a JoinGroup may wait the whole rebalance timeout
	sc.Consumer.Fetch.Min = int32(c.FetchMinBytes)
	sc.Consumer.Fetch.Default = int32(c.FetchDefaultBytes)
	sc.Consumer.Fetch.MaxBytes = int32(c.FetchMaxBytes)
	sc.Consumer.MaxWaitTime = c.FetchMaxWait
	sc.Consumer.MaxProcessingTime = time.Second
	sc.ChannelBufferSize = c.ChannelBufferSize
	sc.Consumer.Return.Errors = true
	sc.Consumer.IsolationLevel = sarama.ReadCommitted // records of aborted transactions are never read
	if c.Isolation == "read_uncommitted" {
		sc.Consumer.IsolationLevel = sarama.ReadUncommitted
	}
	sc.Consumer.Offsets.AutoCommit.Enable = false // committed by the ledger, never before the records are done
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	if c.Start == "latest" {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	return &sc
}

// Kafka is the consumer-group source. Per assigned partition it keeps a Ledger of the
// records it delivered; it commits the offset after the longest done prefix, periodically
// and whenever a partition is revoked or the source stops, and it pauses a partition
// whose ledger holds MaxPending records, and every partition while MaxPendingBytes are held.
type Kafka struct {
	cfg     *Config
	brokers []string
	sc      *sarama.Config
	log     *slog.Logger

	client sarama.Client // the group's, also used to look up committed offsets
	group  sarama.ConsumerGroup

	mu      sync.Mutex
	ledgers map[partitionKey]*Ledger

	budget      *Budget      // max_pending_bytes, shared by the claims
	mostPending atomic.Int64 // the most records any ledger held at once
	commits     atomic.Int64
	rebalances  atomic.Int64
	generation  atomic.Int32 // the group generation last seen
	assigned    atomic.Int64 // partitions currently claimed
	joined      atomic.Bool
}

type partitionKey struct {
	topic     string
	partition int32
}

// NewKafka prepares the source; Run connects.
func NewKafka(cfg *Config, brokers []string, sc *sarama.Config, log *slog.Logger) *Kafka {
	return &Kafka{cfg: cfg, brokers: brokers, sc: sc, log: log, ledgers: map[partitionKey]*Ledger{}, budget: NewBudget(cfg.MaxPendingBytes)}
}

// Run consumes until ctx ends or a fatal error, handing batches to in. It returns after every
// claim has drained (within the drain timeout) and committed what is done.
func (k *Kafka) Run(ctx context.Context, in Intake) error {
	client, err := sarama.NewClient(k.brokers, k.sc)
	if err != nil {
		return fmt.Errorf("source: joining group %s: %w", k.cfg.Group, err)
	}
	defer client.Close()
	group, err := sarama.NewConsumerGroupFromClient(k.cfg.Group, client)
	if err != nil {
		return fmt.Errorf("source: joining group %s: %w", k.cfg.Group, err)
	}
	k.mu.Lock()
	k.client, k.group = client, group
	k.mu.Unlock()
	var wg conc.WaitGroup
	defer wg.Wait()
	defer group.Close()
	wg.Go(func() {
		for err := range group.Errors() {
			var ce *sarama.ConsumerError
			if errors.Is(err, sarama.ErrOffsetOutOfRange) && errors.As(err, &ce) {
				// Sarama ends the session; the next one starts the partition over at `start`.
				k.log.Error("records were deleted from the log (by retention?) before they were read; they are lost to this group, and the partition resumes at start: "+k.cfg.Start,
					"group", k.cfg.Group, "topic", ce.Topic, "partition", ce.Partition)
				continue
			}
			k.log.Warn("consumer group", "group", k.cfg.Group, "err", err)
		}
	})
	h := &handler{k: k, in: in}
	failures := 0
	for {
		err := group.Consume(ctx, k.cfg.Topics, h)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, sarama.ErrClosedConsumerGroup):
			return nil
		case fatalGroupError(err):
			return fmt.Errorf("source: consuming %v as group %s: %w", k.cfg.Topics, k.cfg.Group, failure.Judge(failure.Consume, "source", "", err))
		case err != nil:
			// The brokers are away (a restart, a network cut): join again when they are back.
			failures++
			wait := min(time.Duration(failures)*time.Second, 30*time.Second)
			k.log.Warn("consumer group session failed, joining again", "group", k.cfg.Group, "in", wait, "err", err)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		failures = 0 // an eager rebalance ended the session; join the next one
	}
}

// fatalGroupError is a consumer-group error that waiting will not cure.
func fatalGroupError(err error) bool {
	return failure.Judge(failure.Consume, "source", "", err).Outcome == failure.Stop
}

// Stats are the source's counters, for tests and metrics.
type Stats struct {
	MostPending int64 // the most records one partition's ledger held at once
	// PendingBytes and PeakPendingBytes are the bytes of the records read and not yet done,
	// now and at most so far (max_pending_bytes bounds them).
	PendingBytes, PeakPendingBytes int64
	Commits                        int64
	Aborts                         int64            // exactly_once: transactions aborted
	AbortsBy                       map[string]int64 // exactly_once: of them, by reason (AbortReasons)
	Revokes                        int64            // exactly_once: revokes and losses that aborted a transaction
	Rebalances                     int64
	Assigned                       int64
	Joined                         bool
	Pending                        int64 // records read and not committed, over the assigned partitions
	// Partitions holds, per assigned "topic/partition", the records pending and the commit point.
	Partitions map[string]PartitionStats
}

// PartitionStats describe one assigned partition.
type PartitionStats struct {
	Topic       string
	Partition   int32
	Pending     int
	CommitPoint int64 // -1 before a record is done
	Position    int64 // the commit point, or where the claim started
	HighWater   int64 // the partition's high-water mark, as last fetched
	Lag         int64 // records past the position
	// OldestPending is how long ago the oldest record not yet committed was read.
	OldestPending time.Duration
	// Stalled: the commit point has not moved for stall_timeout while records are pending.
	Stalled bool
}

// Stats reads the counters.
func (k *Kafka) Stats() Stats {
	s := Stats{MostPending: k.mostPending.Load(), Commits: k.commits.Load(), Rebalances: k.rebalances.Load(),
		Assigned: k.assigned.Load(), Joined: k.joined.Load(), PendingBytes: k.budget.Used(), PeakPendingBytes: k.budget.Peak()}
	s.Partitions = map[string]PartitionStats{}
	now := time.Now()
	k.mu.Lock()
	for p, l := range k.ledgers {
		ps := PartitionStats{Topic: p.topic, Partition: p.partition, Pending: l.Pending(), CommitPoint: l.CommitPoint()}
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

type handler struct {
	k  *Kafka
	in Intake

	stopCommits context.CancelFunc
	committer   conc.WaitGroup
}

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.k.joined.Store(true)
	ctx, cancel := context.WithCancel(sess.Context())
	h.stopCommits = cancel
	h.committer.Go(func() { h.commitLoop(ctx, sess) })
	h.committer.Go(func() { h.watchStalls(ctx) })
	h.k.log.Info("joined group", "group", h.k.cfg.Group, "member", sess.MemberID(), "generation", sess.GenerationID(), "claims", fmt.Sprint(sess.Claims()))
	h.observeGeneration(sess)
	return nil
}

// observeGeneration counts a rebalance when the group generation moved since it was last seen.
// An eager rebalance starts a new session (Setup); a cooperative one keeps the session and
// changes its generation, seen when a claim starts or at the next commit tick.
func (h *handler) observeGeneration(sess sarama.ConsumerGroupSession) {
	g := sess.GenerationID()
	if prev := h.k.generation.Swap(g); prev != 0 && prev != g {
		h.k.rebalances.Add(1)
	}
}

func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.stopCommits()
	h.committer.Wait()
	h.k.joined.Store(false)
	return nil
}

// stalled says whether a partition whose commit point has not moved for stuck is stalled.
func (k *Kafka) stalled(stuck time.Duration) bool {
	return k.cfg.StallTimeout > 0 && stuck >= k.cfg.StallTimeout
}

// commitLoop commits the ledgers' commit points every commit interval.
func (h *handler) commitLoop(ctx context.Context, sess sarama.ConsumerGroupSession) {
	t := time.NewTicker(h.k.cfg.CommitInterval)
	defer t.Stop()
	marked := map[partitionKey]int64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.observeGeneration(sess)
		h.k.mu.Lock()
		dirty := false
		for p, l := range h.k.ledgers {
			if cp := l.CommitPoint(); cp >= 0 && cp > marked[p] {
				sess.MarkOffset(p.topic, p.partition, cp, "")
				marked[p] = cp
				dirty = true
			}
		}
		h.k.mu.Unlock()
		if dirty {
			sess.Commit()
			h.k.commits.Add(1)
		}
	}
}

// watchStalls says, every commit interval, when a partition stalls and when it moves again.
// It is a loop of its own: a commit waits on the broker, and a hung broker is one way to stall.
func (h *handler) watchStalls(ctx context.Context) {
	t := time.NewTicker(h.k.cfg.CommitInterval)
	defer t.Stop()
	stalled := map[partitionKey]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.k.mu.Lock()
			for p, l := range h.k.ledgers {
				stuck, oldest := l.Stall(now)
				switch is := h.k.stalled(stuck); {
				case is && !stalled[p]:
					h.k.log.Error("partition stalled: its commit point has not moved while records wait; /healthz fails until it moves",
						"topic", p.topic, "partition", p.partition, "for", stuck.Round(time.Second).String(), "pending", l.Pending(),
						"oldest_read_ago", oldest.Round(time.Second).String(), "stall_timeout", h.k.cfg.StallTimeout.String())
					stalled[p] = true
				case !is && stalled[p]:
					h.k.log.Info("partition moves again", "topic", p.topic, "partition", p.partition)
					delete(stalled, p)
				}
			}
			h.k.mu.Unlock()
		}
	}
}

func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	k := h.k
	p := partitionKey{claim.Topic(), claim.Partition()}
	l := NewLedger(k.budget)
	k.mu.Lock()
	k.ledgers[p] = l
	k.mu.Unlock()
	k.assigned.Add(1)
	h.observeGeneration(sess)
	log := k.log.With("topic", p.topic, "partition", p.partition)
	if off := claim.InitialOffset(); off >= 0 {
		log.Info("partition assigned", "offset", off)
	} else {
		log.Info("partition assigned", "offset", k.cfg.Start)
		k.explainStart(p, log)
	}

	c := &claimReader{h: h, sess: sess, claim: claim, ledger: l, part: p, log: log}
	c.consume(h.in)
	if c.revoked {
		log.Info("partition revoked: finishing what is in flight", "in_flight", l.Pending())
	}
	c.drain()
	if cp := l.CommitPoint(); cp >= 0 {
		sess.MarkOffset(p.topic, p.partition, cp, "")
		sess.Commit()
		k.commits.Add(1)
		log.Info("partition released", "committed", cp)
	} else {
		log.Info("partition released", "committed", "nothing done")
	}
	l.Close()
	k.mu.Lock()
	delete(k.ledgers, p)
	k.mu.Unlock()
	k.assigned.Add(-1)
	return nil
}

// explainStart runs when a claim starts at the `start` policy rather than at an offset: either
// the group never committed one, or sarama found the committed offset out of the log's range
// and reset it. The second loses records unseen, so it is logged as an error.
func (k *Kafka) explainStart(p partitionKey, log *slog.Logger) {
	coordinator, err := k.client.Coordinator(k.cfg.Group)
	if err != nil {
		return
	}
	resp, err := coordinator.FetchOffset(sarama.NewOffsetFetchRequest(k.sc.Version, k.cfg.Group, map[string][]int32{p.topic: {p.partition}}))
	if err != nil {
		return
	}
	block := resp.GetBlock(p.topic, p.partition)
	if block == nil || block.Offset < 0 {
		return // nothing committed yet
	}
	oldest, _ := k.client.GetOffset(p.topic, p.partition, sarama.OffsetOldest)
	newest, _ := k.client.GetOffset(p.topic, p.partition, sarama.OffsetNewest)
	log.Error("the committed offset is no longer in the log (records deleted by retention before they were read, or the topic recreated?): the records between are lost to this group; starting at start: "+k.cfg.Start,
		"group", k.cfg.Group, "committed", block.Offset, "log_start", oldest, "log_end", newest)
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
