package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sourcegraph/conc"

	dlqfmt "github.com/pythia-pipe/pythia-pipe/dlq" // the format: cmdReplay's dlq is the sink
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/replay"
)

func cmdDLQ(args []string, stdout, stderr io.Writer) int {
	if isHelp(args) {
		fmt.Fprintln(stdout, "usage: pythia-pipe dlq replay FILE [flags] (pythia-pipe dlq replay --help lists them)")
		return exitHelp
	}
	if len(args) == 0 || args[0] != "replay" {
		fmt.Fprintln(stderr, "usage: pythia-pipe dlq replay FILE [flags]  (pythia-pipe dlq replay --help lists them)")
		return exitUsage
	}
	return cmdReplay(args[1:], stdout, stderr)
}

type replayOptions struct {
	replay.Options
	since, until, level string
}

func (o *replayOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	fs.StringVar(&o.Stage, "stage", "", "only records that failed at `STAGE`")
	fs.StringVar(&o.Error, "error", "", "only records whose error ("+dlqfmt.HeaderError+") holds this `TEXT`")
	fs.StringVar(&o.since, "since", "", "only records that failed at or after this `TIME` (RFC 3339)")
	fs.StringVar(&o.until, "until", "", "only records that failed before this `TIME` (RFC 3339)")
	fs.IntVar(&o.MaxReplays, "max-replays", 1, "skip records already replayed `N` times (they failed again)")
	fs.Float64Var(&o.Rate, "rate", 0, "at most `N` records written a second; 0: as fast as the broker takes them")
	fs.BoolVar(&o.DryRun, "dry-run", false, "print what would be replayed; write and commit nothing")
	fs.StringVar(&o.Group, "group", "", "the consumer `GROUP` that keeps the replay's progress (default: the source's group + \"-dlq-replay\")")
	fs.StringVar(&o.To, "to", "", "write every replayed record to `TOPIC` (it must exist), whatever its "+dlqfmt.HeaderSourceTopic+" says; without it, records whose "+
		dlqfmt.HeaderSourceTopic+" is not a topic the pipeline reads are refused")
	fs.BoolVar(&o.ReadUncommitted, "read-uncommitted", false, "replay the records of aborted and open transactions in the DLQ too (default: read_committed, only what was committed)")
	fs.StringVar(&o.level, "log-level", "warn", "`LEVEL` of the logs: debug, info, warn or error")
	return fs
}

func cmdReplay(args []string, stdout, stderr io.Writer) int {
	var opts replayOptions
	fs := opts.flags()
	fs.SetOutput(stderr)
	o := &opts.Options
	p, log, code := prepare(fs, args, &opts.level, "pythia-pipe dlq replay FILE [--stage S] [--error TEXT] [--since T] [--until T] [--rate N] [--dry-run] [--to TOPIC] [--read-uncommitted]", pipeline.Options{}, stderr)
	if code != exitOK {
		return code
	}
	for _, t := range []struct {
		text string
		to   *time.Time
	}{{opts.since, &o.Since}, {opts.until, &o.Until}} {
		if t.text == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.text)
		if err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: %q is not an RFC 3339 time (2026-11-26T10:00:00Z)\n", t.text)
			return exitUsage
		}
		*t.to = v
	}
	if p.DLQ == nil {
		fmt.Fprintf(stderr, "pythia-pipe: %s has no dlq\n", p.Name)
		return exitUsage
	}
	dlq := namedTopic(p.DLQ) // a Kafka DLQ names its topic
	if dlq == "" {
		fmt.Fprintf(stderr, "pythia-pipe: the dlq of %s is a %s, not a Kafka topic\n", p.Name, p.DLQ.Type)
		return exitUsage
	}
	if o.Group == "" {
		o.Group = p.KafkaSource().Group + "-dlq-replay"
	}
	sources := p.KafkaSource().Topics
	topics := append([]string{dlq}, sources...)
	if o.To != "" {
		topics = append(topics, o.To) // checked at the start: a typo must not fail at the first write
	}
	admin, err := connect(p, topics)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	defer admin.Close()
	if o.DryRun {
		o.Show = func(m *kafkaio.Message) {
			fmt.Fprintf(stdout, "would replay to %s/%d: key=%s\n", m.Topic, m.Partition, shown(m.Key))
		}
	}
	o.Refuse = logRefusal(log)
	r := replay.New(admin, dlq, sources, *o)
	ctx, stop := signalContext(log)
	defer stop()
	progress, quit := time.NewTicker(time.Second), make(chan struct{})
	defer progress.Stop()
	var said conc.WaitGroup
	said.Go(func() {
		for {
			select {
			case <-progress.C:
				fmt.Fprintf(stderr, "replaying %s (group %s): %s\n", dlq, o.Group, r.Stats())
			case <-quit:
				return
			}
		}
	})
	err = r.Run(ctx)
	close(quit)
	said.Wait()
	verb := "replayed"
	if o.DryRun {
		verb = "dry run, nothing written or committed"
	}
	fmt.Fprintf(stdout, "%s (%s, group %s): %s\n", dlq, verb, o.Group, r.Stats())
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stdout, "interrupted: run it again to go on from here")
		return exitInvalid
	case err != nil:
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	return exitOK
}

// logRefusal logs each DLQ record refused for the topic its pythia.source.topic names.
func logRefusal(log *slog.Logger) func(*kafkaio.Message, string) {
	return func(m *kafkaio.Message, topic string) {
		log.Warn("refused: its "+dlqfmt.HeaderSourceTopic+" is not a topic the pipeline reads (--to TOPIC writes every replayed record to TOPIC)",
			"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, dlqfmt.HeaderSourceTopic, escapeControls(topic))
	}
}
