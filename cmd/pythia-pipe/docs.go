package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

type docsOptions struct{ dir string }

func (o *docsOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("docs", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "write every generated page under `DIR` (reference.md, reference/) instead of reference.md on stdout")
	return fs
}

func cmdDocs(args []string, stdout, stderr io.Writer) int {
	var o docsOptions
	fs := o.flags()
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pythia-pipe docs [--dir DIR] (the reference of every field, as Markdown)")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return flagsFailed(err)
	}
	if len(rest) != 0 {
		fmt.Fprintln(stderr, "usage: pythia-pipe docs [--dir DIR]")
		return exitUsage
	}
	if o.dir == "" {
		pipeline.WriteReference(stdout)
		return exitOK
	}
	files := pipeline.ReferenceFiles()
	if err := os.RemoveAll(filepath.Join(o.dir, "reference")); err != nil {
		fmt.Fprintf(stderr, "pythia-pipe docs: %v\n", err)
		return exitUsage
	}
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(o.dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fmt.Fprintf(stderr, "pythia-pipe docs: %v\n", err)
			return exitUsage
		}
		if err := os.WriteFile(path, files[rel], 0o644); err != nil {
			fmt.Fprintf(stderr, "pythia-pipe docs: %v\n", err)
			return exitUsage
		}
	}
	fmt.Fprintf(stdout, "wrote %d pages under %s\n", len(files), o.dir)
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
