package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/IBM/sarama"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/pipetest"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return flagsFailed(err)
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: pythia-pipe validate FILE...")
		return exitUsage
	}
	code := exitOK
	for _, f := range files {
		if isTestFile(f) {
			if c := validateTest(f, stdout, stderr); c > code {
				code = c
			}
			continue
		}
		p, ok, ioErr := load(f, nil, stderr)
		switch {
		case ioErr:
			code = exitUsage
		case !ok:
			if code == exitOK {
				code = exitInvalid
			}
		case len(p.Warnings) > 0:
			fmt.Fprintf(stdout, "%s: ok, with %d warning(s)\n", f, len(p.Warnings))
		default:
			fmt.Fprintf(stdout, "%s: ok\n", f)
		}
	}
	return code
}

// isTestFile reports a pipeline test file (NAME.test.yaml), which validate checks as one.
func isTestFile(name string) bool {
	return strings.HasSuffix(name, ".test.yaml") || strings.HasSuffix(name, ".test.yml")
}

// validateTest checks a test file without running it: its form, its pipeline, the sinks it
// names.
func validateTest(file string, stdout, stderr io.Writer) int {
	f, err := pipetest.Load(file)
	if err == nil {
		err = pipetest.Check(f)
	}
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitInvalid
	}
	fmt.Fprintf(stdout, "%s: ok (%d test case(s) of %s; pythia-pipe test runs them)\n", file, len(f.Cases), f.Pipeline)
	return exitOK
}

// load reads and validates one pipeline file, printing its diagnostics (errors, or the
// warnings of a valid file) to w. unused are the settings the command replaces
// (pipeline.Options.Unused). ok is false when the file is invalid; ioErr is true when it could
// not be read at all.
func load(file string, unused []string, w io.Writer) (p *pipeline.Pipeline, ok, ioErr bool) {
	src, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(w, "pythia-pipe: %v\n", err)
		return nil, false, true
	}
	p, diags := pipeline.Parse(file, src, pipeline.Options{BaseDir: filepath.Dir(file), Unused: unused})
	if len(diags) > 0 {
		diag.Print(w, diags, diag.Sources{file: src})
		fmt.Fprintf(w, "%s: %d problem(s)\n", file, len(diags))
		return nil, false, false
	}
	diag.Print(w, p.Warnings, diag.Sources{file: src})
	return p, true, false
}

// connect is the sarama config of p's kafka: block, once the brokers have answered and
// topics are found to exist (kafkaconn's one-line explanations otherwise).
func connect(p *pipeline.Pipeline, topics []string) (*sarama.Config, error) {
	base, err := p.Kafka.Sarama()
	if err != nil {
		return nil, err
	}
	return base, p.Kafka.Check(base, topics)
}

// flagsFailed is the exit of a command whose flags did not parse: exitHelp for --help (the
// flag package has printed the flags), exitUsage otherwise.
func flagsFailed(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitHelp
	}
	return exitUsage
}

// parseInterspersed parses flags wherever they stand among the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// prepare parses the flags of a command that runs one pipeline, sets up logging and loads the
// pipeline (unused: as for load); code is non-zero when the command must exit with it.
func prepare(fs *flag.FlagSet, args []string, level *string, usage string, unused []string, stderr io.Writer) (p *pipeline.Pipeline, log *slog.Logger, code int) {
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, flagsFailed(err)
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, "usage: "+usage)
		return nil, nil, exitUsage
	}
	if log, err = newLogger(stderr, *level); err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return nil, nil, exitUsage
	}
	p, ok, ioErr := load(files[0], unused, stderr)
	switch {
	case ioErr:
		return nil, nil, exitUsage
	case !ok:
		return nil, nil, exitInvalid
	}
	return p, log, exitOK
}
