// Package devbroker gives `pythia-pipe dev`, the demo and the tests a Kafka to talk to — the
// in-process Kafka-protocol broker (franz-go's kfake) or a real Apache Kafka started by
// internal/realkafka — with helpers to create, feed and read topics and to read a group's
// offsets, the same for both.
package devbroker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
)

// Broker is a running cluster listening on 127.0.0.1: in-process (Cluster is set) or a real
// Apache Kafka (Real is set).
type Broker struct {
	Cluster *kfake.Cluster
	Real    *realkafka.Broker
	addrs   []string
	admin   *kadm.Client
	client  *kgo.Client
}

// Start starts an in-process cluster of one broker, or of n with kfake.NumBrokers.
func Start(opts ...kfake.Opt) (*Broker, error) {
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("starting the in-process broker: %w", err)
	}
	return connect(&Broker{Cluster: c, addrs: c.ListenAddrs()})
}

// StartReal starts a real Apache Kafka broker; its PLAINTEXT listener is Addrs.
func StartReal(o realkafka.Options) (*Broker, error) {
	r, err := realkafka.Start(o)
	if err != nil {
		return nil, err
	}
	return connect(&Broker{Real: r, addrs: []string{r.Addr("plaintext")}})
}

func connect(b *Broker) (*Broker, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...))
	if err != nil {
		b.Close()
		return nil, err
	}
	b.client, b.admin = cl, kadm.NewClient(cl)
	return b, nil
}

// Addrs are the brokers' host:port addresses.
func (b *Broker) Addrs() []string { return b.addrs }

// Close stops the cluster (a real broker with SIGTERM) and removes a real broker's data.
func (b *Broker) Close() {
	if b.client != nil {
		b.client.Close()
	}
	if b.Cluster != nil {
		b.Cluster.Close()
	}
	if b.Real != nil {
		b.Real.Stop()
		os.RemoveAll(b.Real.Dir)
	}
}

func adminCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// CreateTopic creates a topic unless it exists.
func (b *Broker) CreateTopic(topic string, partitions int32) error {
	return b.CreateTopicWith(topic, partitions, nil)
}

// CreateTopicWith creates a topic with topic configs (max.message.bytes, ...) unless it exists.
func (b *Broker) CreateTopicWith(topic string, partitions int32, configs map[string]string) error {
	if b.Cluster != nil {
		if b.Cluster.TopicInfo(topic) != nil {
			return nil
		}
		return b.Cluster.CreateTopic(topic, partitions, configs)
	}
	ctx, cancel := adminCtx()
	defer cancel()
	var cfg map[string]*string
	for k, v := range configs {
		if cfg == nil {
			cfg = map[string]*string{}
		}
		cfg[k] = &v
	}
	resp, err := b.admin.CreateTopic(ctx, partitions, 1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	// Wait until the topic's partitions have leaders: a client that asks sooner may not see it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if len(b.EndOffsets(topic)) == int(partitions) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s was created but did not show all %d partitions within 30s", topic, partitions)
		}
	}
}

// Record is what Produce writes and Read returns.
type Record struct {
	Key       []byte
	Value     []byte
	Headers   map[string]string
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// Client returns a franz-go client for the cluster; close it after use.
func (b *Broker) Client(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addrs()...), kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ProducerBatchMaxBytes(1 << 20), kgo.MaxBufferedRecords(100000)}, opts...)...)
}

// Produce writes records to topic, in order, and waits for every acknowledgement. Options
// change the producing client's (e.g. smaller batches).
func (b *Broker) Produce(ctx context.Context, topic string, recs []Record, opts ...kgo.Opt) error {
	cl, err := b.Client(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	errs := make(chan error, 1)
	for _, r := range recs {
		cl.Produce(ctx, r.franz(topic), func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errs:
		return fmt.Errorf("producing to %s: %w", topic, err)
	default:
		return nil
	}
}

// EndOffsets returns the high watermark of each partition of topic (empty when it cannot
// be read; callers poll).
func (b *Broker) EndOffsets(topic string) map[int32]int64 { return b.offsets(topic, offsetEnd) }

// StartOffsets returns the log start offset of each partition of topic: above 0 once records
// were deleted.
func (b *Broker) StartOffsets(topic string) map[int32]int64 { return b.offsets(topic, offsetStart) }

// Stable reports whether no transaction is open in topic: each partition's last stable
// offset is its end. A transaction that ended may still be writing its markers for a moment:
// Read reads to the last stable offset, so a test that needs what a transaction wrote waits
// for Stable first.
func (b *Broker) Stable(topic string) bool {
	ends, stable := b.EndOffsets(topic), b.stableOffsets(topic)
	if len(ends) == 0 || len(stable) != len(ends) {
		return false
	}
	for p, end := range ends {
		if stable[p] != end {
			return false
		}
	}
	return true
}

// stableOffsets returns the last stable offset of each partition of topic: the end a
// read_committed reader reads to (below the first record of a transaction still open).
func (b *Broker) stableOffsets(topic string) map[int32]int64 { return b.offsets(topic, offsetStable) }

const (
	offsetEnd    = "end"
	offsetStart  = "start"
	offsetStable = "stable"
)

func (b *Broker) offsets(topic, which string) map[int32]int64 {
	out := map[int32]int64{}
	if b.Cluster != nil { // asked inside the in-process broker: no client connection is made
		for _, p := range b.Cluster.PartitionInfos(topic) {
			switch which {
			case offsetEnd:
				out[p.Partition] = p.HighWatermark
			case offsetStart:
				out[p.Partition] = p.LogStartOffset
			case offsetStable:
				out[p.Partition] = p.LastStableOffset
			}
		}
		return out
	}
	ctx, cancel := adminCtx()
	defer cancel()
	list := map[string]func(context.Context, ...string) (kadm.ListedOffsets, error){
		offsetEnd: b.admin.ListEndOffsets, offsetStart: b.admin.ListStartOffsets, offsetStable: b.admin.ListCommittedOffsets}[which]
	listed, err := list(ctx, topic)
	if err != nil {
		return out
	}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Partition] = o.Offset
		}
	})
	return out
}

// Committed returns the offsets group committed for topic.
func (b *Broker) Committed(group, topic string) map[int32]int64 {
	out := map[int32]int64{}
	if b.Cluster != nil {
		if gi := b.Cluster.GroupInfo(group); gi != nil {
			for p, c := range gi.Commits[topic] {
				out[p] = c.Offset
			}
		}
		return out
	}
	ctx, cancel := adminCtx()
	defer cancel()
	resp, err := b.admin.FetchOffsets(ctx, group)
	if err != nil {
		return out
	}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// Members returns, for each member of group, how many partitions it is assigned.
func (b *Broker) Members(group string) []int {
	var out []int
	if b.Cluster != nil {
		if gi := b.Cluster.GroupInfo(group); gi != nil {
			for _, m := range gi.Members {
				out = append(out, m.NumAssigned())
			}
		}
		return out
	}
	ctx, cancel := adminCtx()
	defer cancel()
	described, err := b.admin.DescribeGroups(ctx, group)
	if err != nil {
		return nil
	}
	for _, m := range described[group].Members {
		n := 0
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				n += len(t.Partitions)
			}
		}
		out = append(out, n)
	}
	return out
}

// CaughtUp reports whether group has committed the end of every partition of topic.
func (b *Broker) CaughtUp(group, topic string) bool {
	committed := b.Committed(group, topic)
	for p, end := range b.EndOffsets(topic) {
		if end > 0 && committed[p] < end {
			return false
		}
	}
	return true
}

// Commit commits offsets for group, as a group with no member running would.
func (b *Broker) Commit(group, topic string, offsets map[int32]int64) error {
	ctx, cancel := adminCtx()
	defer cancel()
	var o kadm.Offsets
	for p, at := range offsets {
		o.AddOffset(topic, p, at, -1)
	}
	resp, err := b.admin.CommitOffsets(ctx, group, o)
	if err != nil {
		return err
	}
	return resp.Error()
}

// DeleteRecords deletes the records of topic's partition before offset, as retention would.
func (b *Broker) DeleteRecords(topic string, partition int32, before int64) error {
	ctx, cancel := adminCtx()
	defer cancel()
	var o kadm.Offsets
	o.AddOffset(topic, partition, before, -1)
	resp, err := b.admin.DeleteRecords(ctx, o)
	if err != nil {
		return err
	}
	return resp.Error()
}

// Read returns the records of topic as a read_committed reader sees them, from the start to
// the last stable offset at the call: those written outside a transaction and those of
// committed ones, never an aborted one's. (Transaction markers take offsets too: they are
// read, to know the end is reached, and left out.)
func (b *Broker) Read(ctx context.Context, topic string) ([]Record, error) {
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	for p, end := range b.stableOffsets(topic) {
		if end > 0 {
			want[p] = end
			offsets[p] = kgo.NewOffset().AtStart()
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	for p, start := range b.StartOffsets(topic) {
		if start > 0 {
			return nil, fmt.Errorf("reading %s: partition %d starts at offset %d: its first records were deleted (by retention?)", topic, p, start)
		}
	}
	cl, err := b.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("reading %s: %w (read %d records; %d partitions not to their end)", topic, err, len(out), len(want))
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			rec := Record{Key: r.Key, Value: r.Value, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp}
			if len(r.Headers) > 0 {
				rec.Headers = map[string]string{}
				for _, h := range r.Headers {
					rec.Headers[h.Key] = string(h.Value)
				}
			}
			out = append(out, rec)
		})
	}
	return out, nil
}

// TopicConfig returns the value of a topic config as the broker reports it.
func (b *Broker) TopicConfig(topic, key string) string {
	ctx, cancel := adminCtx()
	defer cancel()
	rcs, err := b.admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return ""
	}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == key && c.Value != nil {
				return *c.Value
			}
		}
	}
	return ""
}

// SetTopicConfig sets a config of topic (max.message.bytes, ...), as an operator would while
// pipelines run.
func (b *Broker) SetTopicConfig(topic, key, value string) error {
	ctx, cancel := adminCtx()
	defer cancel()
	resp, err := b.admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		return fmt.Errorf("setting %s=%s on %s: %w", key, value, topic, err)
	}
	return nil
}
