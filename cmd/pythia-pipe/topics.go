package main

import (
	"context"
	"flag"
	"fmt"
	"io"

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
	results, err := admin.EnsureTopics(context.Background(), append(p.TopicPlans(), computed...))
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
	for _, r := range results {
		if len(r.Diffs) > 0 {
			fmt.Fprintln(stderr, "pythia-pipe: some topics differ from the file; topics create never changes an existing topic")
			return exitInvalid
		}
	}
	return exitOK
}
