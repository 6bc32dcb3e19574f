package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

type tapOptions struct {
	n                                  int
	fromStart, follow, readUncommitted bool
	format, level                      string
}

func (o *tapOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	fs.IntVar(&o.n, "n", 10, "how many records: the last `N` (the first N with --from-beginning; 0: all)")
	fs.BoolVar(&o.fromStart, "from-beginning", false, "read from the start of each partition")
	fs.BoolVar(&o.follow, "follow", false, "then print new records as they come, until Ctrl-C")
	fs.BoolVar(&o.readUncommitted, "read-uncommitted", false, "show the records of aborted and open transactions too (default: read_committed, what the pipeline's readers see)")
	fs.StringVar(&o.format, "format", "table", "output `FORMAT`: table (for reading) or json (one object per line)")
	fs.StringVar(&o.level, "log-level", "warn", "`LEVEL` of the logs: debug, info, warn or error")
	return fs
}

func cmdTap(args []string, stdout, stderr io.Writer) int {
	var o tapOptions
	fs := o.flags()
	fs.SetOutput(stderr)
	const usage = "pythia-pipe tap FILE [SINK|dlq|source] [-n N] [--from-beginning] [--follow] [--read-uncommitted] [--format table|json]"
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
	admin, err := connect(p, topics)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	defer admin.Close()
	ctx, stop := signalContext(log)
	defer stop()
	if err := tap(ctx, admin, topics, o, printerFor(o.format, stdout)); err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
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
		topic := namedTopic(s)
		_, toKafka := s.Impl.(sinks.TopicWriter)
		switch {
		case !toKafka:
			return nil, fmt.Errorf("%s is a %s sink, not a Kafka topic", what, s.Type)
		case topic == "":
			return nil, fmt.Errorf("sink %s computes its topics (topic_expr); tap another file's sink or use a Kafka client", what)
		}
		return []string{topic}, nil
	}
	return nil, fmt.Errorf("%s is neither a sink of %s nor source (choose one of: %s, source)", what, p.Name, strings.Join(choices, ", "))
}
