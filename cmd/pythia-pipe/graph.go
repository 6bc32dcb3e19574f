package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

func cmdGraph(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "dot", "output format: dot or mermaid")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return flagsFailed(err)
	}
	if len(files) != 1 || (*format != "dot" && *format != "mermaid") {
		fmt.Fprintln(stderr, "usage: pythia-pipe graph FILE [--format dot|mermaid]")
		return exitUsage
	}
	p, ok, ioErr := load(files[0], pipeline.Options{}, stderr)
	switch {
	case ioErr:
		return exitUsage
	case !ok:
		return exitInvalid
	}
	if *format == "mermaid" {
		err = p.WriteMermaid(stdout)
	} else {
		err = p.WriteDOT(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitUsage
	}
	return exitOK
}
