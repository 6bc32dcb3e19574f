package main

import (
	"flag"
	"fmt"
	"io"
)

func cmdTopics(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: pythia-pipe topics create FILE")
		return exitUsage
	}
	fs := flag.NewFlagSet("topics create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	level := fs.String("log-level", "warn", "debug, info, warn or error")
	p, _, code := prepare(fs, args[1:], level, "pythia-pipe topics create FILE", stderr)
	if code != exitOK {
		return code
	}
	sc, err := p.Kafka.Sarama()
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	results, err := p.Kafka.EnsureTopics(sc, p.TopicPlans())
	for _, r := range results {
		fmt.Fprintln(stdout, r)
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
