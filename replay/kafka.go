package replay

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// WriteError is a replayed record Kafka did not take: the replay stops there, and the group
// keeps what was written before it.
type WriteError struct {
	From string // the DLQ record: topic/partition@offset
	To   string // where it was going: topic/partition
	Err  error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("writing %s back to %s: %v", e.From, e.To, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// BusyGroupError is a replay refused because its group has members: another replay is
// running. Two members would each wait for the partitions the other holds, and never end.
type BusyGroupError struct {
	Group   string
	Members int
}

func (e *BusyGroupError) Error() string {
	return fmt.Sprintf("group %s has %d member(s): is another dlq replay running? Wait for it to end, or give this one another --group", e.Group, e.Members)
}

// commitWait bounds the last commit of an interrupted replay: what was written is worth
// committing, but not worth hanging on a broker that does not answer.
const commitWait = 10 * time.Second

// Replayer replays one DLQ topic. Its progress is the committed offsets of a consumer group,
// so that an interrupted replay goes on from where it stopped. One franz-go client is the
// group member and the producer: idempotent, acks=all, each write acknowledged before the
// offset of its DLQ record is marked for commit. A dry run reads from the group's offsets
// without joining it, so that it disturbs no replay that runs.
type Replayer struct {
	admin   *kafkaio.Admin
	topic   string
	sources []string
	decider

	mu    sync.Mutex
	stats Stats
}

// New prepares a replay of the DLQ topic on the connection of admin (which the caller
// closes after Run); sources are the topics the pipeline reads, where records may go back.
func New(admin *kafkaio.Admin, topic string, sources []string, opts Options) *Replayer {
	return &Replayer{admin: admin, topic: topic, sources: sources, decider: decider{opts: opts}}
}

// Stats is what the replay has done so far.
func (r *Replayer) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Run replays the DLQ up to its end as it is when Run starts (for its isolation level), from
// where the group left off; it returns then, or when ctx ends (a later Run goes on from
// there).
func (r *Replayer) Run(ctx context.Context) error {
	backlog, from, err := r.prepare(ctx)
	if err != nil || len(from) == 0 {
		return err
	}
	cl, err := kgo.NewClient(append(append(r.admin.Conn(), backlog.ConsumeOpts()...), r.clientOpts(from)...)...)
	if err != nil {
		return err
	}
	defer cl.CloseAllowingRebalance() // an interrupted poll may still hold the group's rebalances
	var done []int32
	for p := range backlog.End[r.topic] {
		if _, ok := from[p]; !ok {
			done = append(done, p)
		}
	}
	if len(done) > 0 { // what is written to them since the start is not to replay: not fetched
		cl.PauseFetchPartitions(map[string][]int32{r.topic: done})
	}
	left := map[int32]bool{}
	for p := range from {
		left[p] = true
	}
	err = r.consume(ctx, cl, backlog, left)
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitWait)
	defer cancel()
	if cerr := cl.CommitMarkedOffsets(commitCtx); cerr != nil && err == nil {
		err = fmt.Errorf("committing the replay's progress (group %s): %w", r.opts.Group, cerr)
	}
	return err
}

// consume replays what the group's polls bring until each partition of left is read to its
// end, or ctx ends (its error then: the group keeps what was done).
func (r *Replayer) consume(ctx context.Context, cl *kgo.Client, backlog *kafkaio.Backlog, left map[int32]bool) error {
	var pace <-chan time.Time
	if r.opts.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / r.opts.Rate))
		defer t.Stop()
		pace = t.C
	}
	for len(left) > 0 {
		fs := cl.PollRecords(ctx, r.pollSize())
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fs.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", r.topic, err)
		}
		for _, rec := range fs.Records() {
			if !left[rec.Partition] {
				continue
			}
			in, last := backlog.Place(rec)
			if in {
				done, err := r.replay(ctx, cl, rec, pace)
				if err != nil {
					return err
				}
				if !done {
					return ctx.Err()
				}
				cl.MarkCommitRecords(rec) // a dry run's client is in no group: it marks nothing
			}
			if last {
				delete(left, rec.Partition)
				cl.PauseFetchPartitions(map[string][]int32{r.topic: {rec.Partition}})
			}
		}
		cl.AllowRebalance()
	}
	return nil
}

// prepare reads what Run needs before it joins the group: the DLQ's backlog, the partitions
// with something left to replay with where the group stands in them, and the partitions of
// the topics records may go back to.
func (r *Replayer) prepare(ctx context.Context) (*kafkaio.Backlog, map[int32]int64, error) {
	backlog, err := r.admin.Backlog(ctx, !r.opts.ReadUncommitted, r.topic)
	if err != nil {
		return nil, nil, err
	}
	if !r.opts.DryRun {
		n, err := r.admin.GroupMembers(ctx, r.opts.Group)
		if err != nil {
			return nil, nil, err
		}
		if n > 0 {
			return nil, nil, &BusyGroupError{Group: r.opts.Group, Members: n}
		}
	}
	committed, err := r.admin.GroupOffsets(ctx, r.opts.Group)
	if err != nil {
		return nil, nil, err
	}
	from := map[int32]int64{}
	for p, end := range backlog.End[r.topic] {
		at := backlog.Start[r.topic][p]
		if o, ok := committed[r.topic][p]; ok {
			at = max(at, o)
		}
		if at < end {
			from[p] = at
		}
	}
	targets := r.sources
	if r.opts.To != "" {
		targets = []string{r.opts.To}
	}
	r.targets = map[string]int32{}
	for _, t := range targets {
		if r.targets[t], err = r.admin.Partitions(ctx, t); err != nil {
			return nil, nil, fmt.Errorf("reading the partitions of %v: %w", targets, err)
		}
	}
	return backlog, from, nil
}

// clientOpts make the client the group member reading the DLQ and the replay's producer; for
// a dry run, a reader of the partitions from where the group stands (from).
func (r *Replayer) clientOpts(from map[int32]int64) []kgo.Opt {
	if r.opts.DryRun {
		offsets := map[int32]kgo.Offset{}
		for p, at := range from {
			offsets[p] = kgo.NewOffset().At(at)
		}
		return []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: offsets})}
	}
	return []kgo.Opt{
		kgo.ConsumerGroup(r.opts.Group), kgo.ConsumeTopics(r.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A rebalance waits until the records of a poll are written and marked, so that no
		// commit lands on a partition another member took over meanwhile.
		kgo.BlockRebalanceOnPoll(),
		// Marked offsets (records written and acknowledged) are committed every second, when
		// partitions are revoked and at the end.
		kgo.AutoCommitMarks(), kgo.AutoCommitInterval(time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		// Each write is waited for: lingering would only delay it.
		kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(maxRecordBytes),
	}
}

// maxRecordBytes is the largest record the producer sends: a topic's own limit
// (max.message.bytes) is its broker's to enforce, and the error says so.
const maxRecordBytes = 64 << 20

// pollSize bounds the records of a poll, which hold rebalances until they are written: about
// a second's worth at --rate.
func (r *Replayer) pollSize() int {
	if r.opts.Rate > 0 {
		return max(1, int(r.opts.Rate))
	}
	return 500
}

// replay writes m back to its topic when it passes the filters; done is false when ctx
// ended first (it was not written, or not acknowledged: its offset must not be committed).
func (r *Replayer) replay(ctx context.Context, cl *kgo.Client, m *kgo.Record, pace <-chan time.Time) (done bool, err error) {
	if m.Attrs.IsControl() {
		return true, nil // a transaction marker: the end of a partition, never a record to replay
	}
	out, why := r.message(m)
	if why == write {
		if pace != nil {
			select {
			case <-pace:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return false, nil
		}
		if !r.opts.DryRun {
			if err := cl.ProduceSync(ctx, out).FirstErr(); err != nil {
				if ctx.Err() != nil {
					return false, nil
				}
				return false, &WriteError{From: fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset), To: fmt.Sprintf("%s/%d", out.Topic, out.Partition), Err: err}
			}
		}
	}
	r.mu.Lock() // Stats reads them from another goroutine
	r.stats.add(why)
	r.mu.Unlock()
	switch {
	case why == write && r.opts.Show != nil:
		r.opts.Show(out)
	case why == refused && r.opts.Refuse != nil:
		r.opts.Refuse(m, sourceTopic(m))
	}
	return true, nil
}
