package kafkaio

import (
	"context"
	"io"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Reading is how a Reader reads its Backlog.
type Reading struct {
	// From are the partitions to read, by topic, and the offset each starts at. A partition
	// not in it, without an end in the backlog, or already at its end is not read.
	From map[string]map[int32]int64
	// Group, when set, makes the reader a member of this consumer group: each partition
	// starts at the group's committed offset instead (its start when there is none), and
	// what Mark marks is committed every second, when the group takes partitions away, and
	// by Commit. From is then where the group stands (GroupOffsets): a partition it has read
	// to its end must be left out, for nothing more of it comes. Without a group, nothing is
	// committed.
	Group string
	// Follow reads on past the backlog's ends until the caller stops (tap --follow).
	Follow bool
	// PollMax bounds the messages one fetch hands out (0: all it brought). A group's
	// rebalance waits until the caller asks for a message after them, so that no mark lands
	// on a partition another member has taken over meanwhile: a bound keeps that wait short.
	PollMax int
	// FetchBytes bounds what a fetch brings, of all its partitions and of each (0: franz-go's
	// 50 MiB and 1 MiB); a partition's first batch comes whatever its size.
	FetchBytes int32
}

// Reader reads partitions of a Backlog, in offset order within each, up to their ends at
// the backlog's isolation level (or on, following). It keeps transaction markers (Control),
// for one may be all that stands at a partition's end; a partition read to its end is paused
// and left. A Reader is used by one goroutine; Close it when done.
type Reader struct {
	cl      *kgo.Client
	b       *Backlog
	group   bool
	follow  bool
	pollMax int
	left    map[partKey]bool  // the partitions still read
	epochs  map[partKey]int32 // the leader epoch of the last message of each partition handed out
	polled  []*kgo.Record     // what the last fetch brought, not yet handed out
}

// Reader opens a reader of b as how says. It makes no request: Next is the first.
func (a *Admin) Reader(b *Backlog, how Reading) (*Reader, error) {
	r := &Reader{b: b, group: how.Group != "", follow: how.Follow, pollMax: how.PollMax, left: map[partKey]bool{}, epochs: map[partKey]int32{}}
	offsets := map[string]map[int32]kgo.Offset{}
	for topic, from := range how.From {
		for p, at := range from {
			end, ok := b.End[topic][p]
			if !how.Follow && (!ok || at >= end) {
				continue
			}
			r.left[partKey{topic, p}] = true
			if offsets[topic] == nil {
				offsets[topic] = map[int32]kgo.Offset{}
			}
			offsets[topic][p] = kgo.NewOffset().At(at)
		}
	}
	opts := append(slices.Clone(a.conn), b.consumeOpts()...)
	if how.FetchBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(how.FetchBytes), kgo.FetchMaxPartitionBytes(how.FetchBytes))
	}
	if r.group {
		opts = append(opts, groupReading(how.Group, how.From)...)
	} else {
		opts = append(opts, kgo.ConsumePartitions(offsets))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	r.cl = cl
	if r.group { // a group assigns every partition of the topics: those with nothing to read are not fetched
		idle := map[string][]int32{}
		for topic := range how.From {
			for p := range b.End[topic] {
				if !r.left[partKey{topic, p}] {
					idle[topic] = append(idle[topic], p)
				}
			}
		}
		cl.PauseFetchPartitions(idle)
	}
	return r, nil
}

// groupReading are the options of a member of group reading the topics of from.
func groupReading(group string, from map[string]map[int32]int64) []kgo.Opt {
	var topics []string
	for topic := range from {
		topics = append(topics, topic)
	}
	return []kgo.Opt{
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.BlockRebalanceOnPoll(), // see Reading.PollMax
		kgo.AutoCommitMarks(), kgo.AutoCommitInterval(time.Second),
	}
}

// Next is the next message to read: a record, or a transaction marker (Control) that the
// caller skips (and marks, reading as a group). It is io.EOF once every partition is read to
// its end, ctx's error when ctx ends first, or the fetch's error.
func (r *Reader) Next(ctx context.Context) (*Message, error) {
	for {
		if len(r.left) == 0 {
			return nil, io.EOF
		}
		if len(r.polled) == 0 {
			if err := r.poll(ctx); err != nil {
				return nil, err
			}
			continue
		}
		rec := r.polled[0]
		r.polled = r.polled[1:]
		tp := partKey{rec.Topic, rec.Partition}
		if !r.left[tp] {
			continue // fetched before its partition was left
		}
		m := fromFranz(rec)
		in, last := true, false
		if !r.follow {
			in, last = r.b.Place(&m)
		}
		if last {
			r.leave(tp)
		}
		if in {
			r.epochs[tp] = rec.LeaderEpoch
			return &m, nil
		}
	}
}

// poll fetches what comes next. The caller asking again says it is done with what the last
// fetch brought: a group may rebalance then.
func (r *Reader) poll(ctx context.Context) error {
	r.cl.AllowRebalance()
	fs := r.cl.PollRecords(ctx, r.pollMax)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := fs.Err(); err != nil {
		return err
	}
	r.polled = fs.Records()
	return nil
}

// Leave stops reading a partition before its end: the caller has what it wanted of it.
func (r *Reader) Leave(topic string, partition int32) { r.leave(partKey{topic, partition}) }

func (r *Reader) leave(tp partKey) {
	delete(r.left, tp)
	r.cl.PauseFetchPartitions(map[string][]int32{tp.topic: {tp.partition}})
}

// Mark says that m, which Next returned, is done: reading as a group, the group goes on after
// it. Without a group it does nothing.
func (r *Reader) Mark(m *Message) {
	epoch, ok := r.epochs[partKey{m.Topic, m.Partition}]
	if !r.group || !ok {
		return
	}
	// The epoch of the last message handed out of its partition: the one Next returned
	// before the caller marks it, and an epoch never decreases along a partition.
	r.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{m.Topic: {m.Partition: {Epoch: epoch, Offset: m.Offset + 1}}})
}

// Commit commits what is marked now (a group's reader; without one it does nothing).
func (r *Reader) Commit(ctx context.Context) error {
	if !r.group {
		return nil
	}
	return r.cl.CommitMarkedOffsets(ctx)
}

// Close leaves the group (committing what is marked) and closes the connections.
func (r *Reader) Close() {
	r.cl.CloseAllowingRebalance() // an interrupted caller may still hold the group's rebalances
}
