// Command pythia-pipe validates, draws and runs declarative Kafka stream pipelines.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

// Exit codes shared by the commands.
const (
	exitOK      = 0
	exitInvalid = 1 // invalid pipeline, failed run
	exitUsage   = 2 // bad arguments, unreadable file
	// exitHelp is a command's --help, which it has answered: run exits 0.
	exitHelp = -1
)

// commands maps each verb to its implementation; verbs (help.go) lists them in the help.
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
		fmt.Fprint(stdout, usage())
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "pythia-pipe: unknown command %q%s\nusage: pythia-pipe COMMAND [ARGS...], COMMAND one of %s (pythia-pipe help describes each)\n",
			args[0], diag.DidYouMean(args[0], verbNames()), strings.Join(verbNames(), ", "))
		return exitUsage
	}
	if code := cmd(args[1:], stdout, stderr); code != exitHelp {
		return code
	}
	return exitOK
}

// verbNames are the commands, sorted.
func verbNames() []string {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// isHelp reports a command asked for its help alone.
func isHelp(args []string) bool {
	return len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")
}
