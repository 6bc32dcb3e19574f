package saramaio

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// group is kafkaio's Group on sarama's ConsumerGroup: a session per generation of eager
// rebalances (one across cooperative ones), a ConsumeClaim per partition, which sarama tells
// of a revoke by closing the claim's channel, and ends the whole session if ConsumeClaim
// returns for any other reason.
type group struct {
	brokers []string
	sc      *sarama.Config
	cfg     kafkaio.GroupConfig

	mu         sync.Mutex
	cg         sarama.ConsumerGroup
	client     sarama.Client
	sess       sarama.ConsumerGroupSession // the session now; nil between sessions
	generation int32
}

// groupConfig adds cfg's consumer settings to the connection's sarama config.
func groupConfig(base *sarama.Config, cfg kafkaio.GroupConfig) *sarama.Config {
	sc := *base
	strategy := map[string]sarama.BalanceStrategy{
		"cooperative-sticky": sarama.NewBalanceStrategyCooperativeSticky(),
		"sticky":             sarama.NewBalanceStrategySticky(),
		"range":              sarama.NewBalanceStrategyRange(),
		"round-robin":        sarama.NewBalanceStrategyRoundRobin(),
	}[cfg.Balancer]
	if strategy == nil {
		strategy = sarama.NewBalanceStrategyCooperativeSticky()
	}
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
	if cfg.InstanceID != "" {
		sc.Consumer.Group.InstanceId = cfg.InstanceID
	}
	sc.Consumer.Group.Session.Timeout = cfg.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = cfg.HeartbeatInterval
	sc.Consumer.Group.Rebalance.Timeout = cfg.RebalanceTimeout
	sc.Net.ReadTimeout = cfg.RebalanceTimeout + 10*time.Second // a JoinGroup may wait the whole rebalance timeout
	sc.Consumer.Fetch.Min = max(cfg.FetchMinBytes, 1)
	if cfg.FetchPartitionBytes > 0 {
		sc.Consumer.Fetch.Default = cfg.FetchPartitionBytes
	}
	if cfg.FetchMaxBytes > 0 {
		sc.Consumer.Fetch.MaxBytes = cfg.FetchMaxBytes
	}
	sc.Consumer.MaxWaitTime = cfg.FetchMaxWait
	sc.Consumer.MaxProcessingTime = time.Second
	if cfg.Buffer > 0 {
		sc.ChannelBufferSize = cfg.Buffer
	}
	sc.Consumer.Return.Errors = true // commit failures and fetch errors come only there
	sc.Consumer.IsolationLevel = sarama.ReadUncommitted
	if cfg.ReadCommitted {
		sc.Consumer.IsolationLevel = sarama.ReadCommitted
	}
	sc.Consumer.Offsets.AutoCommit.Enable = false // committed by the source, never before the records are done
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	if cfg.StartAtEnd {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	return &sc
}

func (g *group) Run(ctx context.Context, h kafkaio.Handler) error {
	client, err := sarama.NewClient(g.brokers, g.sc)
	if err != nil {
		return fmt.Errorf("joining group %s: %w", g.cfg.Group, kafkaErr(err))
	}
	defer client.Close()
	cg, err := sarama.NewConsumerGroupFromClient(g.cfg.Group, client)
	if err != nil {
		return fmt.Errorf("joining group %s: %w", g.cfg.Group, kafkaErr(err))
	}
	g.mu.Lock()
	g.cg, g.client = cg, client
	g.mu.Unlock()
	var errs conc.WaitGroup
	defer errs.Wait()
	defer cg.Close()
	errs.Go(func() {
		for err := range cg.Errors() {
			var ce *sarama.ConsumerError
			if errors.Is(err, sarama.ErrOffsetOutOfRange) && errors.As(err, &ce) {
				// Sarama ends the session; the next one starts the partition over at the start policy.
				h.Trouble(&kafkaio.ResetError{Topic: ce.Topic, Partition: ce.Partition, At: -1, Running: true})
				continue
			}
			h.Trouble(kafkaErr(err))
		}
	})
	sh := &sessionHandler{g: g, h: h}
	failures := 0
	for {
		err := cg.Consume(ctx, g.cfg.Topics, sh)
		switch {
		case ctx.Err() != nil, errors.Is(err, sarama.ErrClosedConsumerGroup):
			return nil
		case err != nil && failure.Judge(failure.Consume, "source", "", kafkaErr(err)).Outcome == failure.Stop:
			return fmt.Errorf("consuming %v as group %s: %w", g.cfg.Topics, g.cfg.Group, failure.Judge(failure.Consume, "source", "", kafkaErr(err)))
		case err != nil:
			// The brokers are away (a restart, a network cut): join again when they are back.
			failures++
			wait := min(time.Duration(failures)*time.Second, 30*time.Second)
			h.Trouble(fmt.Errorf("the consumer group session failed, joining again in %v: %w", wait, kafkaErr(err)))
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

func (g *group) Pause(topic string, partition int32) {
	if cg := g.consumerGroup(); cg != nil {
		cg.Pause(map[string][]int32{topic: {partition}})
	}
}

func (g *group) Resume(topic string, partition int32) {
	if cg := g.consumerGroup(); cg != nil {
		cg.Resume(map[string][]int32{topic: {partition}})
	}
}

func (g *group) consumerGroup() sarama.ConsumerGroup {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cg
}

// Commit marks offsets in the session and commits them. sarama tells a commit's failure only
// on the group's Errors channel (the Handler's Trouble), not here.
func (g *group) Commit(_ context.Context, offsets []kafkaio.Offset) error {
	g.mu.Lock()
	sess := g.sess
	g.mu.Unlock()
	if sess == nil {
		return errors.New("no group session: the offsets are committed by the next one")
	}
	for _, o := range offsets {
		sess.MarkOffset(o.Topic, o.Partition, o.Offset, "")
	}
	sess.Commit()
	return nil
}

// sessionHandler is sarama's handler of the group's sessions.
type sessionHandler struct {
	g *group
	h kafkaio.Handler
}

func (s *sessionHandler) Setup(sess sarama.ConsumerGroupSession) error {
	s.g.mu.Lock()
	s.g.sess, s.g.generation = sess, sess.GenerationID()
	s.g.mu.Unlock()
	s.h.Joined(sess.GenerationID(), sess.MemberID(), sess.Claims(), true)
	return nil
}

func (s *sessionHandler) Cleanup(sarama.ConsumerGroupSession) error {
	s.g.mu.Lock()
	s.g.sess = nil
	s.g.mu.Unlock()
	return nil
}

// ConsumeClaim serves one partition: a cooperative rebalance that gives this session
// partitions starts claims in a generation the session began before, which counts as a
// rebalance of it.
func (s *sessionHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	s.g.mu.Lock()
	moved := sess.GenerationID() != s.g.generation
	s.g.generation = sess.GenerationID()
	s.g.mu.Unlock()
	if moved {
		s.h.Joined(sess.GenerationID(), sess.MemberID(), sess.Claims(), false)
	}
	if claim.InitialOffset() < 0 {
		s.explainStart(claim)
	}
	c := &saramaClaim{claim: claim, ctx: sess.Context(), out: make(chan []kafkaio.Message), done: make(chan struct{})}
	var pump conc.WaitGroup
	pump.Go(c.pump)
	s.h.Claim(c)
	close(c.done)
	pump.Wait()
	return nil
}

// explainStart runs when a claim starts at the start policy rather than at an offset: either
// the group never committed one, or sarama found the committed offset out of the log's range
// and reset it. The second loses records unseen.
func (s *sessionHandler) explainStart(claim sarama.ConsumerGroupClaim) {
	client := s.g.client
	coordinator, err := client.Coordinator(s.g.cfg.Group)
	if err != nil {
		return
	}
	topic, partition := claim.Topic(), claim.Partition()
	resp, err := coordinator.FetchOffset(sarama.NewOffsetFetchRequest(s.g.sc.Version, s.g.cfg.Group, map[string][]int32{topic: {partition}}))
	if err != nil {
		return
	}
	block := resp.GetBlock(topic, partition)
	if block == nil || block.Offset < 0 {
		return // nothing committed yet
	}
	oldest, _ := client.GetOffset(topic, partition, sarama.OffsetOldest)
	newest, _ := client.GetOffset(topic, partition, sarama.OffsetNewest)
	s.h.Trouble(&kafkaio.ResetError{Topic: topic, Partition: partition, At: block.Offset, LogStart: oldest, LogEnd: newest})
}

// saramaClaim hands a sarama claim's messages on in batches: as many as have come, read
// at once, so that the claim's channel is drained promptly (sarama drops a subscription that
// is not) and the reader gets batches as franz-go gives them.
type saramaClaim struct {
	claim sarama.ConsumerGroupClaim
	ctx   context.Context
	out   chan []kafkaio.Message
	done  chan struct{} // closed when the handler returned
}

// batchMax bounds a batch: a claim's channel holds channel_buffer_size messages.
const batchMax = 512

func (c *saramaClaim) pump() {
	defer close(c.out)
	for {
		var m *sarama.ConsumerMessage
		var ok bool
		select {
		case m, ok = <-c.claim.Messages():
			if !ok {
				return
			}
		case <-c.done:
			return
		}
		batch := []kafkaio.Message{fromSarama(m)}
	more:
		for len(batch) < batchMax {
			select {
			case m, ok := <-c.claim.Messages():
				if !ok {
					break more
				}
				batch = append(batch, fromSarama(m))
			default:
				break more
			}
		}
		select {
		case c.out <- batch:
		case <-c.done:
			return
		}
	}
}

// fromSarama is m as the layer carries it.
func fromSarama(m *sarama.ConsumerMessage) kafkaio.Message {
	msg := kafkaio.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
	if len(m.Headers) > 0 {
		msg.Headers = make([]kafkaio.Header, len(m.Headers))
		for i, h := range m.Headers {
			msg.Headers[i] = kafkaio.Header{Key: string(h.Key), Value: h.Value}
		}
	}
	return msg
}

func (c *saramaClaim) Topic() string                      { return c.claim.Topic() }
func (c *saramaClaim) Partition() int32                   { return c.claim.Partition() }
func (c *saramaClaim) Messages() <-chan []kafkaio.Message { return c.out }
func (c *saramaClaim) HighWaterMark() int64               { return c.claim.HighWaterMarkOffset() }
func (c *saramaClaim) Context() context.Context           { return c.ctx }

// Lost is never told on sarama: a session that ended unannounced fails the commits of its
// claims, which is the same for what is committed.
func (c *saramaClaim) Lost() bool { return false }
