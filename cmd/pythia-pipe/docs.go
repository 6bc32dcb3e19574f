package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

func cmdDocs(args []string, stdout, stderr io.Writer) int {
	if code, ok := noArgs(args, "pythia-pipe docs", "the reference of every field, as Markdown", stdout, stderr); !ok {
		return code
	}
	pipeline.WriteReference(stdout)
	return exitOK
}

func cmdSchema(args []string, stdout, stderr io.Writer) int {
	if code, ok := noArgs(args, "pythia-pipe schema", "the JSON Schema of the pipeline file", stdout, stderr); !ok {
		return code
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(pipeline.JSONSchema()); err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitUsage
	}
	return exitOK
}

// noArgs answers the arguments of a command that takes none: its --help on stdout (exitHelp),
// anything else with its usage on stderr (exitUsage); ok when there are none.
func noArgs(args []string, usage, does string, stdout, stderr io.Writer) (code int, ok bool) {
	switch {
	case isHelp(args):
		fmt.Fprintf(stdout, "usage: %s (%s; no flags)\n", usage, does)
		return exitHelp, false
	case len(args) != 0:
		fmt.Fprintln(stderr, "usage: "+usage)
		return exitUsage, false
	}
	return exitOK, true
}
