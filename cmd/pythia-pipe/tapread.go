package main

import (
	"context"
	"errors"
	"io"
	"sort"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// tap's reading (kafkaio.Reader): each partition read to its end as it was at the start, for
// the isolation level, then with --follow what comes after. Nothing is committed.

// tap prints the backlog of topics (the last n records of each topic by time, or its first n
// from the start; n 0: all), then, following, what comes until ctx ends.
func tap(ctx context.Context, admin *kafkaio.Admin, topics []string, o tapOptions, emit func(*kafkaio.Message)) error {
	backlog, err := admin.Backlog(ctx, !o.readUncommitted, topics...)
	if err != nil {
		return err
	}
	got, err := readBacklog(ctx, admin, backlog, o.n, o.fromStart)
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
	return follow(ctx, admin, backlog, emit)
}

type topicPartition struct {
	topic     string
	partition int32
}

// span is what to read of a partition: the offsets from from to to (excluded).
type span struct{ from, to int64 }

// readBacklog reads each partition of the backlog up to its end: its last n records (or its
// first n from the start; n 0: all). Interrupted, it returns what it read.
func readBacklog(ctx context.Context, admin *kafkaio.Admin, b *kafkaio.Backlog, n int, fromStart bool) (map[string][]*kafkaio.Message, error) {
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
	got, have := map[string][]*kafkaio.Message{}, map[topicPartition]int{}
	for len(spans) > 0 {
		read, err := readSpans(ctx, admin, b, spans, limit)
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
func readSpans(ctx context.Context, admin *kafkaio.Admin, b *kafkaio.Backlog, spans map[topicPartition]span, limit int) (map[topicPartition][]*kafkaio.Message, error) {
	from, to := map[string]map[int32]int64{}, map[string]map[int32]int64{}
	for tp, s := range spans {
		if from[tp.topic] == nil {
			from[tp.topic], to[tp.topic] = map[int32]int64{}, map[int32]int64{}
		}
		from[tp.topic][tp.partition], to[tp.topic][tp.partition] = s.from, s.to
	}
	// The spans are a backlog of their own: each ends where its span does.
	rd, err := admin.Reader(&kafkaio.Backlog{ReadCommitted: b.ReadCommitted, Start: from, End: to}, kafkaio.Reading{From: from})
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	got := map[topicPartition][]*kafkaio.Message{}
	for {
		m, err := rd.Next(ctx)
		switch {
		case errors.Is(err, io.EOF), ctx.Err() != nil:
			return got, nil
		case err != nil:
			return nil, err
		case m.Control:
			continue
		}
		tp := topicPartition{m.Topic, m.Partition}
		got[tp] = append(got[tp], m)
		if limit > 0 && len(got[tp]) >= limit {
			rd.Leave(m.Topic, m.Partition)
		}
	}
}

// follow prints what comes after the backlog, until ctx ends.
func follow(ctx context.Context, admin *kafkaio.Admin, b *kafkaio.Backlog, emit func(*kafkaio.Message)) error {
	rd, err := admin.Reader(b, kafkaio.Reading{From: b.End, Follow: true})
	if err != nil {
		return err
	}
	defer rd.Close()
	for {
		m, err := rd.Next(ctx)
		switch {
		case errors.Is(err, io.EOF), ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		case !m.Control:
			emit(m)
		}
	}
}
