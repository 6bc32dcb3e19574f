package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/sourcegraph/conc"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/failure"
)

// franzGroup is the Group on franz-go: one client polls, and hands each partition's records
// to its claim; the group's revoke and loss callbacks close claims and wait for their
// handlers, so that a revoked partition is drained and committed before it moves.
type franzGroup struct {
	conn []kgo.Opt
	cfg  GroupConfig

	mu     sync.Mutex
	cl     *kgo.Client
	h      Handler
	ctx    context.Context
	claims map[partKey]*franzClaim
	joined bool           // in a session: assignments are then cooperative rebalances of it
	served conc.WaitGroup // the handlers' goroutines
}

type partKey struct {
	topic     string
	partition int32
}

// NewGroup returns a group member on franz-go with the connection conn; Run joins.
func NewGroup(conn []kgo.Opt, cfg GroupConfig) Group {
	return &franzGroup{conn: conn, cfg: cfg, claims: map[partKey]*franzClaim{}}
}

var balancers = map[string]func() kgo.GroupBalancer{
	"cooperative-sticky": kgo.CooperativeStickyBalancer, "sticky": kgo.StickyBalancer,
	"range": kgo.RangeBalancer, "round-robin": kgo.RoundRobinBalancer,
}

// GroupOpts are the franz-go options of a group member reading cfg's topics (the
// transactional session adds its own to them).
func GroupOpts(cfg GroupConfig) []kgo.Opt {
	start := kgo.NewOffset().AtStart()
	if cfg.StartAtEnd {
		start = kgo.NewOffset().AtEnd()
	}
	isolation := kgo.ReadUncommitted()
	if cfg.ReadCommitted {
		isolation = kgo.ReadCommitted()
	}
	balancer := kgo.CooperativeStickyBalancer
	if b, ok := balancers[cfg.Balancer]; ok {
		balancer = b
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group), kgo.ConsumeTopics(cfg.Topics...), kgo.Balancers(balancer()),
		kgo.SessionTimeout(cfg.SessionTimeout), kgo.RebalanceTimeout(cfg.RebalanceTimeout), kgo.HeartbeatInterval(cfg.HeartbeatInterval),
		kgo.ConsumeResetOffset(start), kgo.FetchIsolationLevel(isolation),
		kgo.FetchMinBytes(max(cfg.FetchMinBytes, 1)), kgo.FetchMaxWait(cfg.FetchMaxWait),
	}
	if cfg.FetchMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(cfg.FetchMaxBytes))
	}
	if cfg.FetchPartitionBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(cfg.FetchPartitionBytes))
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	return opts
}

func (g *franzGroup) Run(ctx context.Context, h Handler) error {
	opts := append(slices.Clone(g.conn), GroupOpts(g.cfg)...)
	opts = append(opts, kgo.DisableAutoCommit(), // committed by the source, never before the records are done
		kgo.OnPartitionsAssigned(g.assigned), kgo.OnPartitionsRevoked(g.revoked), kgo.OnPartitionsLost(g.lost))
	g.mu.Lock() // before the client: it may join, and assign, at once
	g.h, g.ctx = h, ctx
	g.mu.Unlock()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("joining group %s: %w", g.cfg.Group, err)
	}
	g.mu.Lock()
	g.cl = cl
	g.mu.Unlock()
	err = g.poll(ctx, cl)
	// Stopping: every claim ends and commits what is done before the member leaves.
	g.closeAll(false)
	g.served.Wait()
	cl.Close()
	return err
}

// poll hands what the client fetches to the claims until ctx ends or the group fails for good.
func (g *franzGroup) poll(ctx context.Context, cl *kgo.Client) error {
	for {
		g.h.Room(ctx)
		fs := cl.PollRecords(ctx, 10_000)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		var fatal error
		fs.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if failure.Judge(failure.Consume, "source", topic, err).Outcome == failure.Stop {
				fatal = err
				return
			}
			g.h.Trouble(fmt.Errorf("%s/%d: %w", topic, partition, err))
		})
		if fatal != nil {
			return fmt.Errorf("consuming %v as group %s: %w", g.cfg.Topics, g.cfg.Group, failure.Judge(failure.Consume, "source", "", fatal))
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				g.deliver(cl, p)
			}
		})
	}
}

// deliver gives a fetched partition's records to its claim; a partition no longer claimed
// (revoked while the fetch came) is left: its next owner reads it from the commit.
func (g *franzGroup) deliver(cl *kgo.Client, p kgo.FetchTopicPartition) {
	g.mu.Lock()
	c := g.claims[partKey{p.Topic, p.Partition}]
	g.mu.Unlock()
	if c == nil {
		return
	}
	// franz-go moves a position that fell off the log's start to the start by itself: what was
	// deleted before it was read is told here, from where the reading was or was to begin.
	first := p.Records[0].Offset
	if c.next < 0 {
		if committed, ok := cl.CommittedOffsets()[p.Topic][p.Partition]; ok && committed.Offset >= 0 && committed.Offset < p.LogStartOffset && first >= p.LogStartOffset {
			g.h.Trouble(&ResetError{Topic: p.Topic, Partition: p.Partition, At: committed.Offset, LogStart: p.LogStartOffset, LogEnd: p.HighWatermark})
		}
	} else if first > c.next && p.LogStartOffset > c.next {
		g.h.Trouble(&ResetError{Topic: p.Topic, Partition: p.Partition, At: c.next, LogStart: p.LogStartOffset, LogEnd: p.HighWatermark, Running: true})
	}
	c.next = p.Records[len(p.Records)-1].Offset + 1
	batch := make([]Message, len(p.Records))
	for i, r := range p.Records {
		batch[i] = fromFranz(r)
	}
	c.push(batch, p.HighWatermark)
}

// fromFranz is r as the layer carries it.
func fromFranz(r *kgo.Record) Message {
	return Message{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value,
		Headers: r.Headers, Timestamp: r.Timestamp, Control: r.Attrs.IsControl()}
}

func (g *franzGroup) assigned(_ context.Context, cl *kgo.Client, parts map[string][]int32) {
	g.mu.Lock()
	ctx, h := g.ctx, g.h
	var started []*franzClaim
	for topic, ps := range parts {
		for _, p := range ps {
			c := newFranzClaim(ctx, topic, p)
			g.claims[partKey{topic, p}] = c
			started = append(started, c)
		}
	}
	held := map[string][]int32{}
	for k := range g.claims {
		held[k.topic] = append(held[k.topic], k.partition)
	}
	fresh := !g.joined
	g.joined = true
	g.mu.Unlock()
	member, generation := cl.GroupMetadata()
	h.Joined(generation, member, held, fresh)
	for _, c := range started {
		g.served.Go(func() {
			defer close(c.done)
			h.Claim(c)
		})
	}
}

func (g *franzGroup) revoked(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	g.end(parts, false)
}

func (g *franzGroup) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	g.mu.Lock()
	g.joined = false // the session ended: the next assignment is a new one
	g.mu.Unlock()
	g.end(parts, true)
}

// end closes the claims of parts and waits for their handlers: a revoked partition is
// drained and committed before the callback returns, and with it the rebalance goes on.
func (g *franzGroup) end(parts map[string][]int32, lost bool) {
	var ending []*franzClaim
	g.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			if c := g.claims[partKey{topic, p}]; c != nil {
				delete(g.claims, partKey{topic, p})
				ending = append(ending, c)
			}
		}
	}
	g.mu.Unlock()
	for _, c := range ending {
		c.close(lost)
	}
	for _, c := range ending {
		<-c.done
	}
}

// closeAll closes every claim (the group stops).
func (g *franzGroup) closeAll(lost bool) {
	g.mu.Lock()
	all := make(map[string][]int32)
	for k := range g.claims {
		all[k.topic] = append(all[k.topic], k.partition)
	}
	g.mu.Unlock()
	g.end(all, lost)
}

func (g *franzGroup) Pause(topic string, partition int32) {
	if cl := g.client(); cl != nil {
		cl.PauseFetchPartitions(map[string][]int32{topic: {partition}})
	}
}

func (g *franzGroup) Resume(topic string, partition int32) {
	if cl := g.client(); cl != nil {
		cl.ResumeFetchPartitions(map[string][]int32{topic: {partition}})
	}
}

func (g *franzGroup) client() *kgo.Client {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cl
}

// Commit commits offsets synchronously: a revoke's commit must not be cancelled by a later
// one, and the caller wants to know it is done.
func (g *franzGroup) Commit(ctx context.Context, offsets []Offset) error {
	cl := g.client()
	if cl == nil || len(offsets) == 0 {
		return nil
	}
	m := map[string]map[int32]kgo.EpochOffset{}
	for _, o := range offsets {
		if m[o.Topic] == nil {
			m[o.Topic] = map[int32]kgo.EpochOffset{}
		}
		m[o.Topic][o.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o.Offset}
	}
	var errs []error
	cl.CommitOffsetsSync(ctx, m, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err))
				}
			}
		}
	})
	return errors.Join(errs...)
}

// franzClaim is a partition claimed on franz-go. The poll loop pushes batches without ever
// waiting (a claim whose handler is busy must not hold up the others: it is paused instead),
// and a pump goroutine hands them to the channel the handler reads.
type franzClaim struct {
	topic     string
	partition int32
	ctx       context.Context
	next      int64 // the offset after the last delivered, -1 before (read by the poll loop only)

	mu       sync.Mutex
	queue    [][]Message
	high     int64
	closed   bool
	lost     bool
	wake     chan struct{} // a token when queue or closed changed
	out      chan []Message
	done     chan struct{} // closed when the handler returned
	pumpDone chan struct{}
}

func newFranzClaim(ctx context.Context, topic string, partition int32) *franzClaim {
	c := &franzClaim{topic: topic, partition: partition, ctx: ctx, next: -1, wake: make(chan struct{}, 1),
		out: make(chan []Message), done: make(chan struct{}), pumpDone: make(chan struct{})}
	go c.pump()
	return c
}

func (c *franzClaim) push(batch []Message, high int64) {
	c.mu.Lock()
	if !c.closed {
		c.queue = append(c.queue, batch)
		c.high = high
	}
	c.mu.Unlock()
	signalTo(c.wake)
}

func (c *franzClaim) close(lost bool) {
	c.mu.Lock()
	if !c.closed {
		c.closed, c.lost, c.queue = true, lost, nil
	}
	c.mu.Unlock()
	signalTo(c.wake)
	<-c.pumpDone
}

// pump hands the queued batches to out, in order, until the claim closes; then it closes out.
func (c *franzClaim) pump() {
	defer close(c.pumpDone)
	defer close(c.out)
	var next []Message
	for {
		if next == nil {
			var closed bool
			if next, closed = c.pop(); closed {
				return
			}
			if next == nil {
				<-c.wake
				continue
			}
		}
		select {
		case c.out <- next:
			next = nil
		case <-c.wake: // more queued, or closed: the batch in hand is dropped with the rest
			if c.isClosed() {
				return
			}
		}
	}
}

// pop takes the oldest queued batch (nil when none), or says the claim closed.
func (c *franzClaim) pop() (batch []Message, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, true
	}
	if len(c.queue) == 0 {
		return nil, false
	}
	batch = c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	return batch, false
}

func (c *franzClaim) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func signalTo(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (c *franzClaim) Topic() string              { return c.topic }
func (c *franzClaim) Partition() int32           { return c.partition }
func (c *franzClaim) Messages() <-chan []Message { return c.out }
func (c *franzClaim) Context() context.Context   { return c.ctx }

func (c *franzClaim) HighWaterMark() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.high
}

func (c *franzClaim) Lost() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}
