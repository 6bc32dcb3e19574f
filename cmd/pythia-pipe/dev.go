package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pythia-pipe/pythia-pipe/devkit"
	"github.com/pythia-pipe/pythia-pipe/devkit/devregistry"
	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/engine"
	"github.com/pythia-pipe/pythia-pipe/metrics"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

type devOptions struct {
	feed                string
	follow, full        bool
	partitions, samples int
	level, out          string
	timeout             time.Duration
	expect              expectations
}

func (o *devOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.StringVar(&o.feed, "feed", "", "records to produce into the source topic from `FILE`, one a line: the value, KEY<TAB>VALUE, "+
		`or a JSON envelope {"key": ..., "value": ..., "headers": {...}, "timestamp": ...}`)
	fs.BoolVar(&o.follow, "follow", false, "keep running after the feed is processed, until Ctrl-C")
	fs.IntVar(&o.partitions, "partitions", 3, "`N` partitions for each source topic")
	fs.IntVar(&o.samples, "samples", 3, "`N` sample records shown per sink")
	fs.BoolVar(&o.full, "full", false, "show the samples whole: keys, headers, values and DLQ reasons uncut")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop the run after `D` (e.g. 30s), at once, and say in the summary what was left unfinished and why; exit 1 if any was")
	fs.StringVar(&o.out, "out", "", "write each sink's records, and the DLQ's, to `DIR`/NAME.jsonl: one JSON object a line (key, value, headers, topic, partition, offset, timestamp)")
	fs.StringVar(&o.level, "log-level", "warn", "`LEVEL` of the logs: debug, info, warn or error")
	fs.Var(&o.expect, "expect", "after the summary, check how many records went where: `NAME=N,...` over the sinks' names, dlq and dropped (e.g. out=9,dlq=0); exit 1 when one differs")
	return fs
}

func cmdDev(args []string, stdout, stderr io.Writer) int {
	var o devOptions
	fs := o.flags()
	fs.SetOutput(stderr)
	reg := devregistry.New() // Avro and Protobuf: a schema registry in process, beside the broker
	opts := pipeline.Options{Unused: append(append([]string(nil), devReplaced...), devregistry.Unused...), Registry: reg.Options()}
	p, log, code := prepare(fs, args, &o.level, "pythia-pipe dev FILE [--feed FILE] [--follow] [--timeout D] [--partitions N] [--samples N] [--full] [--out DIR] [--expect NAME=N,...]", opts, stderr)
	if code != exitOK {
		return code
	}
	if o.partitions < 1 {
		fmt.Fprintln(stderr, "pythia-pipe: --partitions must be at least 1")
		return exitUsage
	}
	if o.timeout < 0 {
		fmt.Fprintln(stderr, "pythia-pipe: --timeout must be a positive duration, e.g. 30s")
		return exitUsage
	}
	stdout = &syncWriter{w: stdout}
	if err := o.expect.unknown(p); err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitUsage
	}
	var err error
	var feed []devkit.Record
	if o.feed != "" {
		if feed, err = readFeed(o.feed, time.Now()); err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
			return exitUsage
		}
	}

	// Topics a topic_expr computes are made when first written to, as a real cluster with
	// auto.create.topics.enable would: dev shows where records go, not which topics exist.
	b, err := devkit.Start(kfake.AllowAutoTopicCreation())
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	defer b.Close()
	switch {
	case len(p.IgnoredVars) > 0:
		verb := " is"
		if len(p.IgnoredVars) > 1 {
			verb = " are"
		}
		fmt.Fprintln(stdout, "note: "+varList(p.IgnoredVars)+verb+" unset: fine for dev, which ignores kafka.brokers and kafka.security")
	case p.Kafka.SASL != nil || p.Kafka.TLS != nil:
		fmt.Fprintln(stdout, "note: the in-process broker is plaintext; kafka.security is ignored by dev")
	}
	if p.Registry != nil {
		if err := reg.Prepare(p); err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
			return exitInvalid
		}
		fmt.Fprintln(stdout, "note: the schema registry is in process (registry.urls is not used), holding the sinks' schema files under their subjects")
	}
	if src := p.KafkaSource(); src.Start == "latest" && len(feed) > 0 {
		// The feed goes in before the pipeline joins its group: latest would start after it,
		// and wait for ever for records that are already there.
		fmt.Fprintln(stdout, "note: start: latest would skip the feed, which is in the topic before the pipeline starts; dev reads from the earliest")
		src.Start = "earliest"
	}
	hints := toolLines(p, b.Addrs())
	// These are the settings of devReplaced.
	p.Kafka.Brokers, p.Kafka.Protocol, p.Kafka.SASL, p.Kafka.TLS = b.Addrs(), "PLAINTEXT", nil, nil
	p.Kafka.CreateOnWrite = true
	if err := createTopics(b, p, int32(o.partitions)); err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	sigs, stopSignals := devSignals()
	defer stopSignals()
	ctx := context.Background()
	fmt.Fprintf(stdout, "pythia-pipe dev: pipeline %s on an in-process broker at %s\n", p.Name, strings.Join(b.Addrs(), ","))
	if len(feed) > 0 {
		if err := frameFeed(ctx, stdout, p, feed); err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
			return exitInvalid
		}
		if err := b.Produce(ctx, p.KafkaSource().Topics[0], feed); err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: feeding %s: %v\n", p.KafkaSource().Topics[0], err)
			return exitInvalid
		}
		fmt.Fprintf(stdout, "fed %d records from %s into topic %s (%d partitions)\n", len(feed), o.feed, p.KafkaSource().Topics[0], o.partitions)
	}

	if len(p.Stateful()) > 0 || len(p.TableTopics()) > 0 { // the broker's changelogs and tables go with it: so does the state
		dir, err := os.MkdirTemp("", "pythia-pipe-dev-state-")
		if err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
			return exitInvalid
		}
		defer os.RemoveAll(dir)
		p.State.Dir = dir
	}
	run, err := engine.ConnectKafka(p, log.With("pipeline", p.Name))
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	say := func(n metrics.WaitNews) { fmt.Fprintln(stdout, n.String()) }
	m, url, stopObserving, err := observe(p, run, "127.0.0.1:0", log, say)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: metrics: %v\n", err)
		return exitInvalid
	}
	defer stopObserving()
	fmt.Fprintf(stdout, "metrics at %s/metrics (health %s/healthz, readiness %s/readyz)\n", url, url, url)
	if o.follow {
		for _, line := range hints {
			fmt.Fprintln(stdout, line)
		}
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- run.Run(runCtx) }()

	group := p.KafkaSource().Group
	end := devRun{done: done, sigs: sigs, timeout: o.timeout, follow: o.follow, drain: p.Source.Impl.Drain(), out: stdout,
		caughtUp: func() bool {
			for _, t := range p.KafkaSource().Topics {
				if !b.CaughtUp(group, t) {
					return false
				}
			}
			return true
		},
		stop: stopRun, abort: run.Engine.Abort, waits: m.Waits}.supervise()
	elapsed := time.Since(start)
	stopObserving()
	if end.err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", end.err)
	}
	if end.how != "" {
		fmt.Fprintln(stdout, end.how)
	}
	fmt.Fprintf(stdout, "processed in %v\n\n", elapsed.Round(10*time.Millisecond))
	var unfinished int64
	for _, t := range p.KafkaSource().Topics {
		unfinished += b.Unfinished(group, t)
	}
	counts, err := summarize(stdout, b, p, run.Engine.Stats(), o.samples, o.full)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: reading the results: %v\n", err)
		return exitInvalid
	}
	if unfinished > 0 {
		fmt.Fprintf(stdout, "  unfinished        %6d records  not committed: a run would read them again\n", unfinished)
		for _, line := range waitingLines(unfinished, end.waits) {
			fmt.Fprintf(stdout, "      %s\n", line)
		}
	}
	if o.out != "" {
		if err := writeOut(stdout, o.out, b, p); err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: --out: %v\n", err)
			return exitInvalid
		}
	}
	met := len(o.expect) == 0 || o.expect.check(stdout, counts)
	if end.err != nil || !met || end.how != "" && unfinished > 0 {
		return exitInvalid
	}
	return exitOK
}

// devReplaced are the settings dev replaces by its in-process broker's: production secrets
// there (${KAFKA_PASSWORD}) need not be set to try a pipeline.
var devReplaced = []string{"kafka.brokers", "kafka.security"}

// varList writes names as ${A}, ${B} and ${C}.
func varList(names []string) string {
	refs := make([]string, len(names))
	for i, n := range names {
		refs[i] = "${" + n + "}"
	}
	if len(refs) == 1 {
		return refs[0]
	}
	return strings.Join(refs[:len(refs)-1], ", ") + " and " + refs[len(refs)-1]
}

func createTopics(b *devkit.Broker, p *pipeline.Pipeline, partitions int32) error {
	source := map[string]bool{}
	for _, t := range p.KafkaSource().Topics {
		source[t] = true
		if err := b.CreateTopic(t, partitions); err != nil {
			return err
		}
	}
	for _, t := range p.TopicPlans() {
		if !source[t.Name] {
			if err := b.CreateTopic(t.Name, t.Partitions); err != nil {
				return err
			}
		}
	}
	for _, t := range p.TableTopics() { // an empty table, which the run follows
		if !source[t] {
			if err := b.CreateTopic(t, partitions); err != nil {
				return err
			}
		}
	}
	return nil
}

// namedTopic is the one topic a sink names, "" when it computes its topic or writes elsewhere.
func namedTopic(s *pipeline.Sink) string {
	if tw, ok := s.Impl.(sinks.TopicWriter); ok && len(tw.Topics()) == 1 {
		return tw.Topics()[0].Name
	}
	return ""
}

// summarize prints what went where: each sink's and the DLQ's records with samples, and what
// the stages dropped. counts are the numbers it printed, by the names --expect takes.
func summarize(w io.Writer, b *devkit.Broker, p *pipeline.Pipeline, stats engine.Stats, samples int, full bool) (counts map[string]int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	counts = map[string]int64{}
	for _, s := range p.Sinks {
		topic := namedTopic(s)
		_, toKafka := s.Impl.(sinks.TopicWriter)
		counts[s.Name] = stats[s.Name].Acked
		switch {
		case topic == "" && toKafka:
			fmt.Fprintf(w, "  sink %-12s %6d records (topic computed per record)\n", s.Name, stats[s.Name].Acked)
			continue
		case topic == "":
			fmt.Fprintf(w, "  sink %-12s %6d records  → %s\n", s.Name, stats[s.Name].Acked, s.Impl.Label())
			continue
		}
		recs, err := b.Read(ctx, topic)
		if err != nil {
			return nil, err
		}
		counts[s.Name] = int64(len(recs))
		fmt.Fprintf(w, "  sink %-12s %6d records  → topic %s\n", s.Name, len(recs), topic)
		for i := 0; i < len(recs) && i < samples; i++ {
			r := recs[i]
			r.Value = devregistry.Readable(s, r.Value)
			fmt.Fprintf(w, "      %s\n", sample(r, full))
		}
	}
	if p.DLQ != nil && namedTopic(p.DLQ) == "" {
		counts["dlq"] = stats["dlq"].Acked
		fmt.Fprintf(w, "  dlq               %6d records  → %s\n", stats["dlq"].Acked, p.DLQ.Impl.Label())
	} else if p.DLQ != nil {
		recs, err := b.Read(ctx, namedTopic(p.DLQ))
		if err != nil {
			return nil, err
		}
		counts["dlq"] = int64(len(recs))
		fmt.Fprintf(w, "  dlq               %6d records  → topic %s\n", len(recs), namedTopic(p.DLQ))
		for i := 0; i < len(recs) && i < samples; i++ {
			fmt.Fprintf(w, "      %s\n", failedSample(recs[i], full))
		}
	}
	var dropped []string
	total := int64(0)
	for _, st := range p.Stages {
		if n := stats[st.Name].Dropped; n > 0 {
			total += n
			why := ""
			if when, ok := st.Fields.Lookup("when"); ok { // a filter's condition; other types drop for other reasons
				why = when.Written()
			}
			if within, ok := st.Fields.Lookup("within"); ok && st.Type == "dedupe" {
				why = "duplicates within " + within.Written()
			}
			if why == "" {
				why = "no route matched"
			}
			dropped = append(dropped, fmt.Sprintf("%s (%s): %d", st.Name, diag.Abbreviate(why, 50), n))
		}
	}
	sort.Strings(dropped)
	fmt.Fprintf(w, "  dropped           %6d records", total)
	if len(dropped) > 0 {
		fmt.Fprintf(w, "  by %s", strings.Join(dropped, "; "))
	}
	fmt.Fprintln(w)
	if _, sink := counts["dropped"]; !sink { // a sink of that name keeps it (countNames)
		counts["dropped"] = total
	}
	return counts, nil
}

// frameFeed writes the feed's JSON objects in Avro or Protobuf when the first stage reads
// them so (their schema registered under its subject, framed with its id); a line that does
// not fit the schema, or is not an object, is fed as written (and will be dead-lettered).
func frameFeed(ctx context.Context, stdout io.Writer, p *pipeline.Pipeline, feed []devkit.Record) error {
	fr := devregistry.FramerOf(p)
	if fr == nil {
		return nil
	}
	framed, asIs := 0, []string{}
	for i := range feed {
		b, ok, err := fr.Frame(ctx, feed[i].Value)
		switch {
		case ok:
			feed[i].Value = b
			framed++
		case err != nil:
			asIs = append(asIs, fmt.Sprintf("record %d %v", i+1, err))
		default:
			asIs = append(asIs, fmt.Sprintf("record %d is not a JSON object", i+1))
		}
	}
	fmt.Fprintf(stdout, "wrote %d feed records as stage %s reads them (%s, framed for the in-process registry)", framed, p.Entry[0], p.StageByName(p.Entry[0]).Fields.String("format"))
	if len(asIs) > 0 {
		fmt.Fprintf(stdout, "; %d as written:\n", len(asIs))
		for _, a := range asIs {
			fmt.Fprintf(stdout, "    %s\n", diag.Abbreviate(a, 140))
		}
		return nil
	}
	fmt.Fprintln(stdout)
	return nil
}

// failedSample is a DLQ record for reading: where it was read, the stage that failed it and
// why (shortened unless full).
func failedSample(r devkit.Record, full bool) string {
	headers := make([]record.Header, 0, len(r.Headers))
	for k, v := range r.Headers {
		headers = append(headers, record.Header{Key: k, Value: []byte(v)})
	}
	info, _ := dlq.Decode(headers) // written by the pipeline just now: nothing to misread
	src := info.Source
	reason := diag.Abbreviate(info.Failure.Reason, 90)
	if full {
		reason = escapeControls(info.Failure.Reason)
	}
	return fmt.Sprintf("%s/%d@%d %s: %s", src.Topic, src.Partition, src.Offset, info.Failure.Stage, reason)
}

// sample is a record of a sink for reading: its key ("-" for none), its headers sorted by
// name (when it has any) and its value, shortened unless full; a tombstone is said to be one.
func sample(r devkit.Record, full bool) string {
	var b strings.Builder
	b.WriteString("key=")
	if r.Key == nil {
		b.WriteString("-")
	} else {
		b.WriteString(cut(shown(r.Key), 40, full))
	}
	if len(r.Headers) > 0 {
		b.WriteString(" headers={")
		for i, name := range slices.Sorted(maps.Keys(r.Headers)) {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(name + "=" + cut(shown([]byte(r.Headers[name])), 40, full))
		}
		b.WriteString("}")
	}
	b.WriteString(" ")
	switch {
	case r.Value == nil:
		b.WriteString("null (a tombstone)")
	case len(r.Value) == 0:
		b.WriteString("(an empty value)")
	default:
		b.WriteString(cut(shown(r.Value), 100, full))
	}
	return b.String()
}

// cut shortens s to n characters, unless full.
func cut(s string, n int, full bool) string {
	if full {
		return s
	}
	return diag.Abbreviate(s, n)
}
