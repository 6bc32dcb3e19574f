// Command pythia-pipe validates, draws and runs declarative Kafka stream pipelines.
package main

import (
	"fmt"
	"io"
	"os"
)

// Exit codes shared by the commands.
const (
	exitOK      = 0
	exitInvalid = 1 // invalid pipeline, failed run
	exitUsage   = 2 // bad arguments, unreadable file
	// exitHelp is a command's --help, which it has answered: run exits 0.
	exitHelp = -1
)

const usage = `pythia-pipe: declarative Kafka stream pipelines

Usage:
  pythia-pipe validate FILE...                     check pipeline files without Kafka
  pythia-pipe graph FILE [--format dot|mermaid]    draw a pipeline (Graphviz DOT by default)
  pythia-pipe run FILE [--log-level LEVEL]         run a pipeline until SIGINT/SIGTERM, then drain
  pythia-pipe dev FILE [--feed FILE] [--follow]    run it on an in-process broker with sample records
  pythia-pipe test [FILE|DIR]... [--junit FILE]    run pipeline test files (NAME.test.yaml) in memory, no broker
  pythia-pipe tap FILE [SINK|dlq|source] [-n N]    print a topic's records: key, headers, time, partition, offset
  pythia-pipe dlq replay FILE [--stage S] [--dry-run] write dead-lettered records back to their source topic
  pythia-pipe topics create FILE                   create the topics the pipeline names, with their create settings
  pythia-pipe schema                               JSON schema of the pipeline file format
  pythia-pipe docs                                 reference of every field, as Markdown
  pythia-pipe version                              version, commit, Go and sarama versions

Each command's --help lists its flags.

Exit status: 0 ok, 1 invalid pipeline or failed run, 2 usage or I/O error.
`

// commands maps each verb to its implementation.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"validate": cmdValidate,
	"graph":    cmdGraph,
	"run":      cmdRun,
	"dev":      cmdDev,
	"test":     cmdTest,
	"tap":      cmdTap,
	"dlq":      cmdDLQ,
	"version":  cmdVersion,
	"topics":   cmdTopics,
	"schema":   cmdSchema,
	"docs":     cmdDocs,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || isHelp(args[:1]) || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "pythia-pipe: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	if code := cmd(args[1:], stdout, stderr); code != exitHelp {
		return code
	}
	return exitOK
}

// isHelp reports a command asked for its help alone.
func isHelp(args []string) bool {
	return len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")
}
