package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

type topicsOptions struct{ level string }

func (o *topicsOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("topics create", flag.ContinueOnError)
	fs.StringVar(&o.level, "log-level", "warn", "`LEVEL` of the logs: debug, info, warn or error")
	return fs
}

func cmdTopics(args []string, stdout, stderr io.Writer) int {
	if isHelp(args) {
		fmt.Fprintln(stdout, "usage: pythia-pipe topics create FILE (pythia-pipe topics create --help lists its flags)")
		return exitHelp
	}
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: pythia-pipe topics create FILE")
		return exitUsage
	}
	var o topicsOptions
	fs := o.flags()
	fs.SetOutput(stderr)
	p, _, code := prepare(fs, args[1:], &o.level, "pythia-pipe topics create FILE", pipeline.Options{}, stderr)
	if code != exitOK {
		return code
	}
	admin, err := kafkaio.NewAdmin(p.Kafka)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	defer admin.Close()
	computed, patterns := p.ComputedTopicPlans()
	results, err := admin.EnsureTopics(context.Background(), append(append(p.TopicPlans(), computed...), p.TableTopicPlans()...))
	for _, r := range results {
		fmt.Fprintln(stdout, r)
	}
	for _, pat := range patterns {
		fmt.Fprintf(stdout, "topics matching %s (computed by sink %s): not created; create each one records may name (a record naming a missing topic goes to the DLQ)\n", pat[0], pat[1])
	}
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	changelogs, err := ensureChangelogs(p, admin, results, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	for _, r := range append(results, changelogs...) {
		if len(r.Diffs) > 0 {
			fmt.Fprintln(stderr, "pythia-pipe: some topics differ from the file; topics create never changes an existing topic")
			return exitInvalid
		}
	}
	return exitOK
}

// ensureChangelogs makes the changelog topics of the stateful stages, compacted, and their
// repartition topics, with the
// partitions the source's create block sets, else as many as the source topic has: made just
// now by results, or on the brokers. A changelog whose source topic's partitions cannot be
// known is not made, and the line says so (run makes it as it starts).
func ensureChangelogs(p *pipeline.Pipeline, admin *kafkaio.Admin, results []kafkaio.TopicResult, stdout io.Writer) ([]kafkaio.TopicResult, error) {
	var topics []kafkaconn.Topic
	for _, c := range p.ChangelogPlans() {
		if c.Partitions == 0 {
			for _, r := range results {
				if r.Created && r.Name == c.Source {
					c.Partitions = r.Partitions
				}
			}
		}
		if c.Partitions == 0 {
			n, err := admin.Partitions(context.Background(), c.Source)
			if err != nil {
				fmt.Fprintf(stdout, "topic %s (the %s of stage %s): not created: its partitions are those of topic %s, which cannot be known (%v); run makes it as it starts, or give the source a create block with partitions\n",
					c.Name, c.What, c.Stage, c.Source, err)
				continue
			}
			c.Partitions = n
		}
		topics = append(topics, c.Topic)
	}
	if len(topics) == 0 {
		return nil, nil
	}
	results, err := admin.EnsureTopics(context.Background(), topics)
	for _, r := range results {
		fmt.Fprintln(stdout, r)
	}
	return results, err
}
