package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

func cmdDocs(args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: pythia-pipe docs")
		return exitUsage
	}
	pipeline.WriteReference(stdout)
	return exitOK
}

func cmdSchema(args []string, stdout, stderr io.Writer) int {
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
