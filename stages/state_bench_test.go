package stages_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/stages"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// The stateful stages over stores on disk, one record at a time as one worker would, with
// internal/bench's feeds (state_test.go) spread over 8 partitions by key: what a record costs
// the stage and its Pebble stores, without Kafka. Run with -benchtime 1000000x for the
// benchmarks' backlog (the stores grow with it).

const benchPartitions = 8

// BenchmarkDedupeStore is internal/bench's dedupe: payments by id, every fifth a duplicate.
func BenchmarkDedupeStore(b *testing.B) {
	p := build(b, "  - {name: once, type: dedupe, within: 1h}\n")
	benchStateful(b, p.StageByName("once").Impl, nil, func(i int) *record.Record {
		id := i
		if i%5 == 4 {
			h := uint64(i) * 0x9E3779B97F4A7C15
			if (i/5)%2 == 0 {
				id = max(i-1-5*int(h>>60%4), 3)
			} else {
				id = 5 * int(h>>20%uint64(i/5+1))
			}
		}
		key := fmt.Sprintf("pay-%09d", id)
		return &record.Record{Key: []byte(key), Value: []byte(`{"payment_id":"` + key + `"}`), Timestamp: time.UnixMilli(1700000000000 + int64(i))}
	})
}

// BenchmarkAggregateStore is internal/bench's aggregate: orders of 10,007 customers, count and
// sum per customer per minute, a seventh of them up to 5 s early.
func BenchmarkAggregateStore(b *testing.B) {
	p := build(b, `  - {name: parse, type: decode, schema: {order_id: string, customer_id: string, amount: float, "*": any}}
  - {name: agg, type: aggregate, window: {tumbling: 1m}, grace: 10s, late: drop, aggregates: {orders: count(), revenue: sum(msg.amount)}}
`)
	benchStateful(b, p.StageByName("agg").Impl, p.StageByName("parse").Impl, func(i int) *record.Record {
		customer := fmt.Sprintf("c%d", i%10007)
		ts := int64(1700000000000 + i)
		if i%7 == 0 {
			ts -= int64(i*7919) % 5000
		}
		body := fmt.Sprintf(`{"order_id":"o%d","customer_id":"%s","amount":%d.5,"region":"eu"}`, i, customer, i%999)
		return &record.Record{Key: []byte(customer), Value: []byte(body), Timestamp: time.UnixMilli(ts)}
	})
}

// benchStateful feeds b.N records of feed through stage (after first, when set) with its
// stores on disk, and reports the CPU time a record took.
func benchStateful(b *testing.B, stage, first stages.Stage, feed func(i int) *record.Record) {
	sf := stage.(stages.Stateful)
	stores := state.NewStores(state.Options{Dir: b.TempDir(), CacheBytes: 64 << 20, Count: sf.Count}, noChangelog{}, sf.Restore)
	defer func() { _ = stores.Close(context.Background(), false) }()
	sf.OpenState(stores)
	ctx := context.Background()
	offsets := make([]int64, benchPartitions)
	var out []stages.Output
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for from := 0; from < b.N; from += 4096 {
		b.StopTimer()
		recs := make([]*record.Record, 0, 4096)
		for i := from; i < min(from+4096, b.N); i++ {
			rec := feed(i)
			h := fnv.New32a()
			h.Write(rec.Key)
			rec.Topic, rec.Partition = "in", int32(h.Sum32()%benchPartitions)
			rec.Offset = offsets[rec.Partition]
			offsets[rec.Partition]++
			recs = append(recs, rec)
		}
		began := cpuTime()
		b.StartTimer()
		for _, rec := range recs {
			var err error
			if first != nil {
				if out, err = first.Process(ctx, rec, out[:0]); err != nil {
					b.Fatal(err)
				}
				rec = out[0].Rec
			}
			if out, err = stage.Process(ctx, rec, out[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu += cpuTime() - began
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}
