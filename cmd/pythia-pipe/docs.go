package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

func cmdDocs(args []string, stdout, stderr io.Writer) int {
	if isHelp(args) {
		fmt.Fprintln(stdout, "usage: pythia-pipe docs (the reference of every field, as Markdown; no flags)")
		return exitHelp
	}
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: pythia-pipe docs")
		return exitUsage
	}
	pipeline.WriteReference(stdout)
	return exitOK
}

func cmdSchema(args []string, stdout, stderr io.Writer) int {
	if isHelp(args) {
		fmt.Fprintln(stdout, "usage: pythia-pipe schema (the JSON Schema of the pipeline file; no flags)")
		return exitHelp
	}
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: pythia-pipe schema")
		return exitUsage
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(pipeline.JSONSchema()); err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitUsage
	}
	return exitOK
}
