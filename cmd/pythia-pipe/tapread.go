package main

import (
	"context"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// tap's Kafka client (franz-go): each partition read to its end as it was at the start, for
// the isolation level, then with --follow what comes after. Nothing is committed.

// tap prints the backlog of topics (the last n records of each topic by time, or its first n
// from the start; n 0: all), then, following, what comes until ctx ends.
func tap(ctx context.Context, admin *kafkaio.Admin, topics []string, o tapOptions, emit func(*kgo.Record)) error {
	backlog, err := admin.Backlog(ctx, !o.readUncommitted, topics...)
	if err != nil {
		return err
	}
	conn := admin.Conn()
	got, err := readBacklog(ctx, conn, backlog, o.n, o.fromStart)
	if err != nil {
		return err
	}
	for _, topic := range topics {
		recs := got[topic]
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].Timestamp.Before(recs[j].Timestamp) })
		switch {
		case o.n == 0 || len(recs) <= o.n:
		case o.fromStart:
			recs = recs[:o.n]
		default:
			recs = recs[len(recs)-o.n:]
		}
		for _, r := range recs {
			emit(r)
		}
	}
	if !o.follow || ctx.Err() != nil {
		return nil
	}
	return follow(ctx, conn, backlog, emit)
}

type topicPartition struct {
	topic     string
	partition int32
}

// span is what to read of a partition: the offsets from from to to (excluded).
type span struct{ from, to int64 }

// readBacklog reads each partition of the backlog up to its end: its last n records (or its
// first n from the start; n 0: all). Interrupted, it returns what it read.
func readBacklog(ctx context.Context, conn []kgo.Opt, b *kafkaio.Backlog, n int, fromStart bool) (map[string][]*kgo.Record, error) {
	spans := map[topicPartition]span{}
	for topic, ends := range b.End {
		for p, end := range ends {
			start := b.Start[topic][p]
			if !fromStart && n > 0 {
				start = max(start, end-int64(n))
			}
			spans[topicPartition{topic, p}] = span{start, end}
		}
	}
	limit := 0
	if fromStart {
		limit = n
	}
	got, have := map[string][]*kgo.Record{}, map[topicPartition]int{}
	for len(spans) > 0 {
		read, err := readSpans(ctx, conn, b, spans, limit)
		if err != nil || ctx.Err() != nil {
			return got, err
		}
		next := map[topicPartition]span{}
		for tp, s := range spans {
			got[tp.topic] = append(got[tp.topic], read[tp]...)
			have[tp] += len(read[tp])
			// The last n offsets held fewer than n records: transaction markers and aborted
			// transactions take offsets too. The offsets before them, twice as many.
			if start := b.Start[tp.topic][tp.partition]; !fromStart && n > 0 && have[tp] < n && s.from > start {
				next[tp] = span{max(start, s.from-2*(s.to-s.from)), s.from}
			}
		}
		spans = next
	}
	return got, nil
}

// readSpans reads the spans of partitions, at most limit records of each (0: all), leaving
// out transaction markers. Interrupted, it returns what it read.
func readSpans(ctx context.Context, conn []kgo.Opt, b *kafkaio.Backlog, spans map[topicPartition]span, limit int) (map[topicPartition][]*kgo.Record, error) {
	offsets := map[string]map[int32]kgo.Offset{}
	left := map[topicPartition]bool{}
	for tp, s := range spans {
		if s.from >= s.to {
			continue
		}
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.Offset{}
		}
		offsets[tp.topic][tp.partition] = kgo.NewOffset().At(s.from)
		left[tp] = true
	}
	got := map[topicPartition][]*kgo.Record{}
	if len(left) == 0 {
		return got, nil
	}
	cl, err := partitionReader(conn, b, offsets)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, nil
		}
		if err := fs.Err(); err != nil {
			return nil, err
		}
		for _, r := range fs.Records() {
			tp := topicPartition{r.Topic, r.Partition}
			if !left[tp] {
				continue
			}
			in, last := kafkaio.Reached(r, spans[tp].to)
			if in && !r.Attrs.IsControl() {
				got[tp] = append(got[tp], r)
			}
			if last || (limit > 0 && len(got[tp]) >= limit) {
				delete(left, tp)
				cl.PauseFetchPartitions(map[string][]int32{r.Topic: {r.Partition}})
			}
		}
	}
	return got, nil
}

// follow prints what comes after the backlog, until ctx ends.
func follow(ctx context.Context, conn []kgo.Opt, b *kafkaio.Backlog, emit func(*kgo.Record)) error {
	offsets := map[string]map[int32]kgo.Offset{}
	for topic, ends := range b.End {
		offsets[topic] = map[int32]kgo.Offset{}
		for p, end := range ends {
			offsets[topic][p] = kgo.NewOffset().At(end)
		}
	}
	cl, err := partitionReader(conn, b, offsets)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err(); err != nil {
			return err
		}
		for _, r := range fs.Records() {
			if !r.Attrs.IsControl() {
				emit(r)
			}
		}
	}
}

// partitionReader reads the partitions of offsets from there, at the backlog's isolation level.
func partitionReader(conn []kgo.Opt, b *kafkaio.Backlog, offsets map[string]map[int32]kgo.Offset) (*kgo.Client, error) {
	return kgo.NewClient(append(append(slices.Clone(conn), b.ConsumeOpts()...), kgo.ConsumePartitions(offsets))...)
}
