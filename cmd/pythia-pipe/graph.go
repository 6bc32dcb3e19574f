package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// graphUsage is graph's usage line.
const graphUsage = "pythia-pipe graph [--format dot|mermaid] FILE"

type graphOptions struct{ format string }

func (o *graphOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	fs.StringVar(&o.format, "format", "dot", "output `FORMAT`: dot or mermaid")
	return fs
}

func cmdGraph(args []string, stdout, stderr io.Writer) int {
	var o graphOptions
	fs := o.flags()
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: "+graphUsage)
		fs.PrintDefaults()
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return flagsFailed(err)
	}
	if len(files) != 1 || (o.format != "dot" && o.format != "mermaid") {
		fmt.Fprintln(stderr, "usage: "+graphUsage)
		return exitUsage
	}
	p, ok, ioErr := load(files[0], pipeline.Options{}, stderr)
	switch {
	case ioErr:
		return exitUsage
	case !ok:
		return exitInvalid
	}
	if o.format == "mermaid" {
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
