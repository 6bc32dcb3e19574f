// Package replay writes dead-lettered records back to the topics they were read from, once
// what made them fail is fixed (`pythia-pipe dlq replay`).
package replay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// Options choose what is replayed and how.
type Options struct {
	Group      string    // the consumer group that keeps the replay's progress
	Stage      string    // only records that failed at this stage ("": any)
	Error      string    // only records whose pythia.error holds this text ("": any)
	Since      time.Time // only records that failed at or after this time (zero: any)
	Until      time.Time // only records that failed before this time (zero: any)
	MaxReplays int       // a record replayed this often already is skipped: it failed again
	Rate       float64   // records written a second at most; 0: no limit
	DryRun     bool      // say what would be replayed; write and commit nothing
	// Show receives each record that is (or, dry, would be) replayed, as written, one at a
	// time.
	Show func(*sarama.ProducerMessage)
}

// Stats counts what a replay read and did.
type Stats struct {
	Read, Replayed                             int
	Filtered, ReplayedBefore, Truncated, Alien int // skipped, and why
}

func (s Stats) String() string {
	return fmt.Sprintf("read %d, replayed %d; skipped: %d not matching, %d failed again after a replay, %d cut short by the DLQ, %d not from a pipeline (no pythia.source.topic)",
		s.Read, s.Replayed, s.Filtered, s.ReplayedBefore, s.Truncated, s.Alien)
}

// why a record is not replayed
type skip int

const (
	write skip = iota
	filtered
	replayedBefore
	truncated
	alien
)

func (s *Stats) add(why skip) {
	s.Read++
	switch why {
	case write:
		s.Replayed++
	case filtered:
		s.Filtered++
	case replayedBefore:
		s.ReplayedBefore++
	case truncated:
		s.Truncated++
	case alien:
		s.Alien++
	}
}

// Header names the DLQ writes, and the count replay adds.
const (
	headerReplayed = "pythia.replayed"
	headerPrefix   = "pythia."
)

// Replayer replays one DLQ topic. Its progress is the committed offsets of a consumer group,
// so that an interrupted replay goes on from where it stopped.
type Replayer struct {
	client     sarama.Client
	partitions func(topic string) ([]int32, error)
	group      sarama.ConsumerGroup
	producer   sarama.SyncProducer // nil when dry
	topic      string
	opts       Options

	mu    sync.Mutex
	stats Stats
}

// New connects: a client for the DLQ and a consumer group on it (consumer must start a new
// group at the oldest offset), a producer for the writes (producer must be set up for a sync
// producer: see sinks.ProducerConfig).
func New(brokers []string, consumer, producer *sarama.Config, topic string, opts Options) (*Replayer, error) {
	client, err := sarama.NewClient(brokers, consumer)
	if err != nil {
		return nil, err
	}
	r := &Replayer{client: client, partitions: client.Partitions, topic: topic, opts: opts}
	if r.group, err = sarama.NewConsumerGroupFromClient(opts.Group, client); err != nil {
		client.Close()
		return nil, err
	}
	if !opts.DryRun {
		if r.producer, err = sarama.NewSyncProducer(brokers, producer); err != nil {
			r.group.Close()
			client.Close()
			return nil, err
		}
	}
	return r, nil
}

// Close lets go of the connections.
func (r *Replayer) Close() error {
	var errs []error
	if r.producer != nil {
		errs = append(errs, r.producer.Close())
	}
	errs = append(errs, r.group.Close(), r.client.Close())
	return errors.Join(errs...)
}

// Stats is what the replay has done so far.
func (r *Replayer) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Run replays the DLQ up to its end as it is when Run starts, from where the group left off;
// it returns then, or when ctx ends (a later Run goes on from there).
func (r *Replayer) Run(ctx context.Context) error {
	parts, err := r.client.Partitions(r.topic)
	if err != nil {
		return err
	}
	h := &handler{r: r, starts: map[int32]int64{}, ends: map[int32]int64{}, finished: map[int32]bool{}}
	for _, p := range parts {
		if h.starts[p], err = r.client.GetOffset(r.topic, p, sarama.OffsetOldest); err != nil {
			return err
		}
		if h.ends[p], err = r.client.GetOffset(r.topic, p, sarama.OffsetNewest); err != nil {
			return err
		}
	}
	if r.opts.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / r.opts.Rate))
		defer t.Stop()
		h.pace = t.C
	}
	session, cancel := context.WithCancel(ctx)
	defer cancel()
	h.cancel = cancel
	for session.Err() == nil { // a rebalance ends a session; the next goes on from the commits
		if err := r.group.Consume(session, []string{r.topic}, h); err != nil && session.Err() == nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.err != nil:
		return h.err
	case len(h.finished) < len(parts):
		return ctx.Err() // interrupted: the group keeps what was done
	}
	return nil
}

type handler struct {
	r        *Replayer
	starts   map[int32]int64 // each partition's oldest offset when the replay began
	ends     map[int32]int64 // and its end
	pace     <-chan time.Time
	cancel   context.CancelFunc
	mu       sync.Mutex
	finished map[int32]bool // partitions replayed to their end
	err      error
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim replays one partition of the DLQ up to its end.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := claim.Partition()
	end, from := h.ends[p], claim.InitialOffset()
	if from < 0 { // nothing committed yet: from the oldest
		from = h.starts[p]
	}
	if from >= end {
		return h.done(sess, p)
	}
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if err := h.r.replay(sess.Context(), m, h.pace); err != nil {
				h.fail(err)
				return err
			}
			if !h.r.opts.DryRun {
				sess.MarkMessage(m, "")
			}
			if m.Offset+1 >= end {
				if !h.r.opts.DryRun {
					sess.Commit()
				}
				return h.done(sess, p)
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// done records that partition is replayed to its end and, once all are, ends the session.
// Until then the claim stays open, reading nothing more: a claim that ends early closes its
// partition consumer in the middle of the session, and sarama's other partitions of the same
// broker then wait for that hand-over (seen on the in-process broker under -race).
func (h *handler) done(sess sarama.ConsumerGroupSession, partition int32) error {
	h.mu.Lock()
	if h.finished[partition] = true; len(h.finished) == len(h.ends) {
		h.cancel()
	}
	h.mu.Unlock()
	<-sess.Context().Done()
	return nil
}

func (h *handler) fail(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
	h.cancel()
}

// replay writes m back to its topic when it passes the filters.
func (r *Replayer) replay(ctx context.Context, m *sarama.ConsumerMessage, pace <-chan time.Time) error {
	msg, why := r.message(m)
	if why == write {
		if pace != nil {
			select {
			case <-pace:
			case <-ctx.Done():
				return nil
			}
		}
		if r.producer != nil {
			if _, _, err := r.producer.SendMessage(msg); err != nil {
				return fmt.Errorf("writing %s/%d@%d back to %s: %w", m.Topic, m.Partition, m.Offset, msg.Topic, err)
			}
		}
	}
	r.mu.Lock() // partitions are replayed at once: one at a time here
	defer r.mu.Unlock()
	r.stats.add(why)
	if why == write && r.opts.Show != nil {
		r.opts.Show(msg)
	}
	return nil
}

// message is what replaying m writes: its key, value and headers as the source had them (the
// pythia.* headers dropped) with pythia.replayed counted up, to the topic and partition it was
// read from; or why it is not replayed.
func (r *Replayer) message(m *sarama.ConsumerMessage) (*sarama.ProducerMessage, skip) {
	h := map[string]string{}
	var kept []sarama.RecordHeader
	for _, x := range m.Headers {
		k := string(x.Key)
		if strings.HasPrefix(k, headerPrefix) {
			h[k] = string(x.Value)
			continue
		}
		kept = append(kept, *x)
	}
	replayed, _ := strconv.Atoi(h[headerReplayed])
	failedAt, _ := time.Parse(time.RFC3339Nano, h["pythia.failed_at"])
	o := r.opts
	switch {
	case h["pythia.source.topic"] == "":
		return nil, alien
	case h["pythia.truncated"] != "":
		return nil, truncated
	case o.Stage != "" && h["pythia.stage"] != o.Stage,
		o.Error != "" && !strings.Contains(h["pythia.error"], o.Error),
		!o.Since.IsZero() && failedAt.Before(o.Since),
		!o.Until.IsZero() && !failedAt.Before(o.Until):
		return nil, filtered
	case replayed >= o.MaxReplays:
		return nil, replayedBefore
	}
	kept = append(kept, sarama.RecordHeader{Key: []byte(headerReplayed), Value: []byte(strconv.Itoa(replayed + 1))})
	msg := &sarama.ProducerMessage{Topic: h["pythia.source.topic"], Headers: kept, Timestamp: m.Timestamp, Partition: -1}
	if m.Key != nil {
		msg.Key = sarama.ByteEncoder(m.Key)
	}
	if m.Value != nil {
		msg.Value = sarama.ByteEncoder(m.Value)
	}
	if p, err := strconv.Atoi(h["pythia.source.partition"]); err == nil {
		if n, err := r.partitions(msg.Topic); err == nil && p < len(n) {
			msg.Partition = int32(p) // where it was read: its key's other records are there
		}
	}
	return msg, write
}

// Partitioner writes a record to the partition it names, or by the hash of its key when it
// names none (-1): a replayed record goes back where it was read, when that partition is
// still there.
func Partitioner(topic string) sarama.Partitioner {
	return &partitioner{hash: sarama.NewHashPartitioner(topic)}
}

type partitioner struct{ hash sarama.Partitioner }

func (p *partitioner) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	if m.Partition >= 0 && m.Partition < n {
		return m.Partition, nil
	}
	return p.hash.Partition(m, n)
}

func (p *partitioner) RequiresConsistency() bool { return true }
