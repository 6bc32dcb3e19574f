// Package devkit is the Kafka `pythia-pipe dev` runs a pipeline on, shipped in the binary:
// an in-process broker (franz-go's kfake) and what dev does with it — create the pipeline's
// topics, feed records, know when the pipeline's group has caught up, and read what came out
// as read_committed consumers would. Its schema registry is devkit/devregistry. The tests'
// harness, internal/devbroker, is built on it: a real Kafka attached through Admin, and what
// only tests need (transactions, faults, group members, topic configs).
//
// It depends on franz-go alone, so that any package's tests can use it.
package devkit

import (
	"context"
	"fmt"
	"github.com/twmb/franz-go/pkg/kgo"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running cluster listening on 127.0.0.1: in process, or one running elsewhere
// that a test attached (Attach).
type Broker struct {
	// Cluster is the in-process cluster, nil for an attached one; tests inject faults with it.
	Cluster *kfake.Cluster
	addrs   []string
	admin   Admin
}

// Admin is what differs between the in-process cluster and one running elsewhere (a real
// Kafka, in the tests): creating a topic, and reading the offsets of its partitions and of
// its groups. The rest — producing, reading to the end, knowing a group caught up — is the
// same over both, built on it.
type Admin interface {
	// CreateTopic creates a topic with topic configs (max.message.bytes, ...) unless it exists.
	CreateTopic(topic string, partitions int32, configs map[string]string) error
	// StartOffsets, EndOffsets and StableOffsets are the log start offset, the high watermark
	// and the last stable offset of each partition of topic; empty when they cannot be read
	// (callers poll).
	StartOffsets(topic string) map[int32]int64
	EndOffsets(topic string) map[int32]int64
	StableOffsets(topic string) map[int32]int64
	// Committed returns the offsets group committed for topic.
	Committed(group, topic string) map[int32]int64
}

// Start starts an in-process cluster of one broker, or of n with kfake.NumBrokers.
func Start(opts ...kfake.Opt) (*Broker, error) {
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("starting the in-process broker: %w", err)
	}
	keepAbortedTransactions(c)
	return &Broker{Cluster: c, addrs: c.ListenAddrs(), admin: inProcess{c}}, nil
}

// Attach is a Broker for a cluster running at addrs, which admin administers. Close leaves
// it running: it is its starter's to stop.
func Attach(addrs []string, admin Admin) *Broker {
	return &Broker{addrs: addrs, admin: admin}
}

// Addrs are the brokers' host:port addresses.
func (b *Broker) Addrs() []string { return b.addrs }

// Close stops the in-process cluster.
func (b *Broker) Close() {
	if b.Cluster != nil {
		b.Cluster.Close()
	}
}

// CreateTopic creates a topic unless it exists.
func (b *Broker) CreateTopic(topic string, partitions int32) error {
	return b.admin.CreateTopic(topic, partitions, nil)
}

// CreateTopicWith creates a topic with topic configs (max.message.bytes, ...) unless it exists.
func (b *Broker) CreateTopicWith(topic string, partitions int32, configs map[string]string) error {
	return b.admin.CreateTopic(topic, partitions, configs)
}

// StartOffsets returns the log start offset of each partition of topic: above 0 once records
// were deleted.
func (b *Broker) StartOffsets(topic string) map[int32]int64 { return b.admin.StartOffsets(topic) }

// EndOffsets returns the high watermark of each partition of topic (empty when it cannot be
// read; callers poll).
func (b *Broker) EndOffsets(topic string) map[int32]int64 { return b.admin.EndOffsets(topic) }

// StableOffsets returns the last stable offset of each partition of topic: the end a
// read_committed reader reads to (below the first record of a transaction still open).
func (b *Broker) StableOffsets(topic string) map[int32]int64 { return b.admin.StableOffsets(topic) }

// Committed returns the offsets group committed for topic.
func (b *Broker) Committed(group, topic string) map[int32]int64 {
	return b.admin.Committed(group, topic)
}

// CaughtUp reports whether group has committed the end of every partition of topic.
func (b *Broker) CaughtUp(group, topic string) bool { return b.Unfinished(group, topic) == 0 }

// Unfinished counts the records of topic past group's commits: not read yet, or read and not
// finished (a new member of the group reads them again). A topic written in transactions (a
// repartition topic under exactly-once) ends with a marker no consumer commits past: the
// offsets of a short gap are read, and its markers not counted. A partition the group
// committed in and whose end the broker did not give counts one record: unknown is not done.
func (b *Broker) Unfinished(group, topic string) int64 {
	committed := b.Committed(group, topic)
	ends := b.EndOffsets(topic)
	var n int64
	for p := range committed {
		if _, ok := ends[p]; !ok {
			n++
		}
	}
	for p, end := range ends {
		gap := max(0, end-committed[p])
		if gap > 0 && gap <= markerGap {
			gap = b.recordsBetween(topic, p, committed[p], end)
		}
		n += gap
	}
	return n
}

// markerGap is the longest gap whose offsets Unfinished reads to tell records from markers: a
// few transactions' markers, where a longer gap is records not read yet.
const markerGap = 16

// recordsBetween counts the records (not transaction markers) of a partition from one offset
// to another; on a failure to read, every offset counts.
func (b *Broker) recordsBetween(topic string, p int32, from, to int64) int64 {
	cl, err := b.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return to - from
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	for last := from - 1; last+1 < to; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return to - from
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < to && !r.Attrs.IsControl() {
				n++
			}
			last = max(last, r.Offset)
		})
	}
	return n
}

// inProcess is the in-process cluster's Admin: asked inside it, with no client connection
// (a test's faults on admin requests do not reach it).
type inProcess struct{ c *kfake.Cluster }

func (a inProcess) CreateTopic(topic string, partitions int32, configs map[string]string) error {
	if a.c.TopicInfo(topic) != nil {
		return nil
	}
	return a.c.CreateTopic(topic, partitions, configs)
}

func (a inProcess) StartOffsets(topic string) map[int32]int64 {
	return a.offsets(topic, func(p *kfake.PartitionInfo) int64 { return p.LogStartOffset })
}

func (a inProcess) EndOffsets(topic string) map[int32]int64 {
	return a.offsets(topic, func(p *kfake.PartitionInfo) int64 { return p.HighWatermark })
}

func (a inProcess) StableOffsets(topic string) map[int32]int64 {
	return a.offsets(topic, func(p *kfake.PartitionInfo) int64 { return p.LastStableOffset })
}

func (a inProcess) offsets(topic string, of func(*kfake.PartitionInfo) int64) map[int32]int64 {
	out := map[int32]int64{}
	for _, p := range a.c.PartitionInfos(topic) {
		out[p.Partition] = of(p)
	}
	return out
}

func (a inProcess) Committed(group, topic string) map[int32]int64 {
	out := map[int32]int64{}
	if gi := a.c.GroupInfo(group); gi != nil {
		for p, c := range gi.Commits[topic] {
			out[p] = c.Offset
		}
	}
	return out
}
