package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

// tapQuiet is how long a partition may stay silent below its end before tap stops reading
// it: a transaction's marker takes an offset that no record comes at.
const tapQuiet = 2 * time.Second

type tapOptions struct {
	n                 int
	fromStart, follow bool
	format, level     string
}

func (o *tapOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	fs.IntVar(&o.n, "n", 10, "how many records: the last `N` (the first N with --from-beginning; 0: all)")
	fs.BoolVar(&o.fromStart, "from-beginning", false, "read from the start of each partition")
	fs.BoolVar(&o.follow, "follow", false, "then print new records as they come, until Ctrl-C")
	fs.StringVar(&o.format, "format", "table", "output `FORMAT`: table (for reading) or json (one object per line)")
	fs.StringVar(&o.level, "log-level", "warn", "`LEVEL` of the logs: debug, info, warn or error")
	return fs
}

func cmdTap(args []string, stdout, stderr io.Writer) int {
	var o tapOptions
	fs := o.flags()
	fs.SetOutput(stderr)
	const usage = "pythia-pipe tap FILE [SINK|dlq|source] [-n N] [--from-beginning] [--follow] [--format table|json]"
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagsFailed(err)
	}
	if len(pos) < 1 || len(pos) > 2 || o.n < 0 || (o.format != "table" && o.format != "json") {
		fmt.Fprintln(stderr, "usage: "+usage)
		return exitUsage
	}
	log, err := newLogger(stderr, o.level)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitUsage
	}
	p, ok, ioErr := load(pos[0], pipeline.Options{}, stderr)
	switch {
	case ioErr:
		return exitUsage
	case !ok:
		return exitInvalid
	}
	what := "dlq"
	if len(pos) == 2 {
		what = pos[1]
	}
	topics, err := tapTopics(p, what)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitUsage
	}
	base, err := connect(p, topics)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	client, err := sarama.NewClient(p.Kafka.Brokers, base)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	defer consumer.Close()
	ctx, stop := signalContext(log)
	defer stop()
	emit := printerFor(o.format, stdout)
	var ends []partitionEnd
	for _, topic := range topics {
		msgs, topicEnds, err := tapBacklog(ctx, client, consumer, topic, o.n, o.fromStart)
		if err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: %s: %v\n", topic, err)
			return exitInvalid
		}
		for _, m := range msgs {
			emit(m)
		}
		ends = append(ends, topicEnds...)
	}
	if o.follow {
		if err := tapFollow(ctx, consumer, ends, emit); err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
			return exitInvalid
		}
	}
	return exitOK
}

// tapTopics are the topics of what: a sink's (named, not computed), the DLQ's, the source's.
func tapTopics(p *pipeline.Pipeline, what string) ([]string, error) {
	if what == "source" {
		return p.KafkaSource().Topics, nil
	}
	var choices []string
	for _, s := range append(append([]*pipeline.Sink(nil), p.Sinks...), p.DLQ) {
		if s == nil {
			continue
		}
		choices = append(choices, s.Name)
		if s.Name != what {
			continue
		}
		k, ok := s.Impl.(*sinks.KafkaSink)
		switch {
		case !ok:
			return nil, fmt.Errorf("%s is a %s sink, not a Kafka topic", what, s.Type)
		case k.Topic == "":
			return nil, fmt.Errorf("sink %s computes its topics (topic_expr); tap another file's sink or use a Kafka client", what)
		}
		return []string{k.Topic}, nil
	}
	return nil, fmt.Errorf("%s is neither a sink of %s nor source (choose one of: %s, source)", what, p.Name, strings.Join(choices, ", "))
}

// partitionEnd is where a partition's backlog ended: --follow goes on from there.
type partitionEnd struct {
	topic     string
	partition int32
	next      int64
}

// tapBacklog reads each partition of topic up to its end as it is now: the last n records
// of each (or the first n from the start), then keeps the last n (the first n) of them all by
// time.
func tapBacklog(ctx context.Context, client sarama.Client, consumer sarama.Consumer, topic string, n int, fromStart bool) ([]*sarama.ConsumerMessage, []partitionEnd, error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, nil, err
	}
	var all []*sarama.ConsumerMessage
	var ends []partitionEnd
	for _, part := range parts {
		oldest, err := client.GetOffset(topic, part, sarama.OffsetOldest)
		if err != nil {
			return nil, nil, err
		}
		newest, err := client.GetOffset(topic, part, sarama.OffsetNewest)
		if err != nil {
			return nil, nil, err
		}
		ends = append(ends, partitionEnd{topic, part, newest})
		start := oldest
		if !fromStart && n > 0 {
			start = max(oldest, newest-int64(n))
		}
		if start >= newest {
			continue
		}
		msgs, err := readRange(ctx, consumer, topic, part, start, newest, n, fromStart)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, msgs...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Timestamp.Before(all[j].Timestamp) })
	switch {
	case n == 0 || len(all) <= n:
	case fromStart:
		all = all[:n]
	default:
		all = all[len(all)-n:]
	}
	return all, ends, nil
}

// readRange reads a partition from start until end (or n records from the start).
func readRange(ctx context.Context, consumer sarama.Consumer, topic string, part int32, start, end int64, n int, fromStart bool) ([]*sarama.ConsumerMessage, error) {
	pc, err := consumer.ConsumePartition(topic, part, start)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	var out []*sarama.ConsumerMessage
	quiet := time.NewTimer(tapQuiet)
	defer quiet.Stop()
	for {
		select {
		case m := <-pc.Messages():
			out = append(out, m)
			if m.Offset+1 >= end || (fromStart && n > 0 && len(out) >= n) {
				return out, nil
			}
			quiet.Reset(tapQuiet)
		case err := <-pc.Errors():
			return nil, err
		case <-quiet.C:
			return out, nil
		case <-ctx.Done():
			return out, nil
		}
	}
}

// tapFollow prints what comes after the ends, until ctx ends.
func tapFollow(ctx context.Context, consumer sarama.Consumer, ends []partitionEnd, emit func(*sarama.ConsumerMessage)) error {
	var mu sync.Mutex
	var wg conc.WaitGroup
	defer wg.Wait()
	for _, e := range ends {
		pc, err := consumer.ConsumePartition(e.topic, e.partition, e.next)
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer pc.Close()
			for {
				select {
				case m := <-pc.Messages():
					mu.Lock()
					emit(m)
					mu.Unlock()
				case <-ctx.Done():
					return
				}
			}
		})
	}
	<-ctx.Done()
	return nil
}

// printerFor writes records as a table for reading, or as JSON lines.
func printerFor(format string, w io.Writer) func(*sarama.ConsumerMessage) {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return func(m *sarama.ConsumerMessage) { _ = enc.Encode(tapLine(m)) }
	}
	return func(m *sarama.ConsumerMessage) {
		fmt.Fprintf(w, "%s/%d@%d  %s  key=%s\n", m.Topic, m.Partition, m.Offset, m.Timestamp.UTC().Format(time.RFC3339Nano), shown(m.Key))
		for _, h := range m.Headers {
			fmt.Fprintf(w, "    %s: %s\n", h.Key, shown(h.Value))
		}
		fmt.Fprintf(w, "    value: %s\n", shown(m.Value))
	}
}

// shown is bytes for reading: text as it is, null for none, base64 for the rest.
func shown(b []byte) string {
	switch {
	case b == nil:
		return "null"
	case utf8.Valid(b):
		return string(b)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(b)
}

// tapLine is a record as one JSON object: a JSON value as JSON, other text as a string, bytes
// that are not UTF-8 as base64.
func tapLine(m *sarama.ConsumerMessage) map[string]any {
	line := map[string]any{"topic": m.Topic, "partition": m.Partition, "offset": m.Offset,
		"timestamp": m.Timestamp.UTC().Format(time.RFC3339Nano), "key": nil, "value": nil}
	if m.Key != nil {
		line["key"] = shown(m.Key)
	}
	switch {
	case m.Value == nil:
	case json.Valid(m.Value):
		line["value"] = json.RawMessage(m.Value)
	default:
		line["value"] = shown(m.Value)
	}
	if len(m.Headers) > 0 {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[string(x.Key)] = shown(x.Value)
		}
		line["headers"] = h
	}
	return line
}
