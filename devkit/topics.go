package devkit

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is what Produce writes and Read returns.
type Record struct {
	Key       []byte
	Value     []byte
	Headers   map[string]string
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// KgoRecord is r as franz-go writes it to topic. Its Partition counts only for a client with
// the manual partitioner (a test's transactions): Produce's spreads records by key.
func (r Record) KgoRecord(topic string) *kgo.Record {
	kr := &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	for k, v := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return kr
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
		cl.Produce(ctx, r.KgoRecord(topic), func(_ *kgo.Record, err error) {
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

// Read returns the records of topic as a read_committed reader sees them, from the start to
// the last stable offset at the call: those written outside a transaction and those of
// committed ones, never an aborted one's. (Transaction markers take offsets too: they are
// read, to know the end is reached, and left out.)
func (b *Broker) Read(ctx context.Context, topic string) ([]Record, error) {
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	for p, end := range b.StableOffsets(topic) {
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
