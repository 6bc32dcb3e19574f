package main

import (
	"flag"
	"fmt"
	"strings"
)

// A verb is a command as the top-level help lists it.
type verb struct {
	words string               // what names it: "dev", "dlq replay"
	args  string               // its arguments, its flags apart
	does  string               // one line
	flags func() *flag.FlagSet // the flags it parses, from the function it builds them with; nil: none
}

// verbs are the commands in the order the top-level help lists them. TestHelpListsEveryFlag
// checks them against the commands map and against each command's own --help.
var verbs = []verb{
	{"validate", "FILE|DIR...", "check pipeline files (and test files) without Kafka; - reads standard input", flagsOf[validateOptions]},
	{"graph", "FILE", "draw a pipeline (Graphviz DOT by default)", flagsOf[graphOptions]},
	{"run", "FILE", "run a pipeline until SIGINT/SIGTERM, then drain", flagsOf[runOptions]},
	{"dev", "FILE", "run it on an in-process broker with sample records", flagsOf[devOptions]},
	{"test", "[FILE|DIR]...", "run pipeline test files (NAME.test.yaml) in memory, no broker", flagsOf[testOptions]},
	{"tap", "FILE [SINK|dlq|source]", "print a topic's records: key, headers, time, partition, offset", flagsOf[tapOptions]},
	{"dlq replay", "FILE", "write dead-lettered records back to their source topic", flagsOf[replayOptions]},
	{"topics create", "FILE", "create the topics the pipeline names, with their create settings, its stateful stages' changelog and repartition topics, and its table lookups' topics", flagsOf[topicsOptions]},
	{"schema", "", "JSON schema of the pipeline file format", nil},
	{"docs", "", "reference of every field, as Markdown; --dir writes a page per type too", flagsOf[docsOptions]},
	{"version", "", "version, commit, Go and sarama versions", nil},
}

// flagsOf is the flag set of a command whose options are a T, for the help: the same function
// the command parses its arguments with builds it.
func flagsOf[T any, P interface {
	*T
	flags() *flag.FlagSet
}]() *flag.FlagSet {
	return P(new(T)).flags()
}

// usage is the top-level help: every command with every flag it takes.
func usage() string {
	var b strings.Builder
	b.WriteString("pythia-pipe: declarative Kafka stream pipelines\n\nUsage:\n")
	type row struct{ left, right string }
	for _, v := range verbs {
		var flags []row
		if v.flags != nil {
			v.flags().VisitAll(func(f *flag.Flag) {
				name, use := flag.UnquoteUsage(f)
				left := "--" + f.Name
				if len(f.Name) == 1 {
					left = "-" + f.Name // tap's -n
				}
				if name != "" {
					left += " " + name
				}
				if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
					use += " (default " + f.DefValue + ")"
				}
				flags = append(flags, row{left, use})
			})
		}
		fmt.Fprintf(&b, "  %-46s %s\n", strings.TrimSpace("pythia-pipe "+v.words+" "+v.args), v.does)
		width := 0
		for _, f := range flags {
			width = max(width, len(f.left))
		}
		for _, f := range flags {
			fmt.Fprintf(&b, "      %-*s  %s\n", width, f.left, f.right)
		}
	}
	b.WriteString(`
Flags may come before or after the arguments. Each command's --help lists its own.

Exit status: 0 ok, 1 invalid pipeline or failed run, 2 usage or I/O error.
`)
	return b.String()
}
