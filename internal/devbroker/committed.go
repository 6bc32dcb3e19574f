package devbroker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// endMark is the header of the records ReadCommitted writes to find the end of a topic.
const endMark = "pythia.test.end"

// ReadCommitted returns the records of topic a read_committed reader sees: those of
// committed transactions and those written outside one, never an aborted one's. To know it
// read everything, it first writes a marker record (outside a transaction) to every
// partition, then reads until it saw each; it leaves the markers out of what it returns.
// A record of a transaction still open holds the read until the transaction ends.
func (b *Broker) ReadCommitted(ctx context.Context, topic string) ([]Record, error) {
	ends := b.EndOffsets(topic)
	if len(ends) == 0 {
		return nil, fmt.Errorf("reading %s: no partitions", topic)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	cl, err := b.Client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	for p := range ends {
		r := &kgo.Record{Topic: topic, Partition: p, Headers: []kgo.RecordHeader{{Key: endMark, Value: []byte(run)}}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			cl.Close()
			return nil, fmt.Errorf("reading %s: writing its end mark: %w", topic, err)
		}
	}
	cl.Close()
	offsets := map[int32]kgo.Offset{}
	for p := range ends {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	rd, err := b.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var out []Record
	for left := len(ends); left > 0; {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("reading %s committed: %w (%d partitions not read to the end; a transaction still open?)", topic, err, left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == endMark {
					if string(h.Value) == run {
						left--
					}
					return
				}
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
