// Package devbroker is an in-process Kafka-protocol broker (franz-go's kfake) for
// `pythia-pipe dev`, the demo and the tests, with helpers to feed and read topics.
package devbroker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker is a running in-process cluster listening on 127.0.0.1.
type Broker struct {
	Cluster *kfake.Cluster
}

// Start starts a cluster of one broker, or of n with NumBrokers.
func Start(opts ...kfake.Opt) (*Broker, error) {
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("starting the in-process broker: %w", err)
	}
	return &Broker{Cluster: c}, nil
}

// Addrs are the brokers' host:port addresses.
func (b *Broker) Addrs() []string { return b.Cluster.ListenAddrs() }

// Close stops the cluster.
func (b *Broker) Close() { b.Cluster.Close() }

// CreateTopic creates a topic unless it exists.
func (b *Broker) CreateTopic(topic string, partitions int32) error {
	if b.Cluster.TopicInfo(topic) != nil {
		return nil
	}
	return b.Cluster.CreateTopic(topic, partitions, nil)
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

// Produce writes records to topic, in order, and waits for every acknowledgement.
func (b *Broker) Produce(ctx context.Context, topic string, recs []Record) error {
	cl, err := b.Client()
	if err != nil {
		return err
	}
	defer cl.Close()
	errs := make(chan error, 1)
	for _, r := range recs {
		kr := &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
		for k, v := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		cl.Produce(ctx, kr, func(_ *kgo.Record, err error) {
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

// EndOffsets returns the high watermark of each partition of topic.
func (b *Broker) EndOffsets(topic string) map[int32]int64 {
	out := map[int32]int64{}
	for _, p := range b.Cluster.PartitionInfos(topic) {
		out[p.Partition] = p.HighWatermark
	}
	return out
}

// Committed returns the offsets group committed for topic.
func (b *Broker) Committed(group, topic string) map[int32]int64 {
	out := map[int32]int64{}
	if gi := b.Cluster.GroupInfo(group); gi != nil {
		for p, c := range gi.Commits[topic] {
			out[p] = c.Offset
		}
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

// Read returns every record in topic, from the start to the high watermark at the call.
func (b *Broker) Read(ctx context.Context, topic string) ([]Record, error) {
	ends := b.EndOffsets(topic)
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	total := int64(0)
	for p, end := range ends {
		if end > 0 {
			want[p] = end
			total += end
			offsets[p] = kgo.NewOffset().AtStart()
		}
	}
	if total == 0 {
		return nil, nil
	}
	cl, err := b.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("reading %s: %w (read %d of %d)", topic, err, len(out), total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				rec := Record{Key: r.Key, Value: r.Value, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp}
				if len(r.Headers) > 0 {
					rec.Headers = map[string]string{}
					for _, h := range r.Headers {
						rec.Headers[h.Key] = string(h.Value)
					}
				}
				out = append(out, rec)
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
	}
	return out, nil
}
