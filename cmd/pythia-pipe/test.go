package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/pipetest"
)

type testOptions struct{ junit, level string }

func (o *testOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.StringVar(&o.junit, "junit", "", "also write the results as a JUnit XML report to `FILE`")
	fs.StringVar(&o.level, "log-level", "error", "`LEVEL` of the pipelines' own logs: debug, info, warn or error")
	return fs
}

func cmdTest(args []string, stdout, stderr io.Writer) int {
	var o testOptions
	fs := o.flags()
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pythia-pipe test [FILE.test.yaml | PIPELINE.yaml | DIR]... [--junit FILE]")
		fs.PrintDefaults()
	}
	targets, err := parseInterspersed(fs, args)
	if err != nil {
		return flagsFailed(err)
	}
	if len(targets) == 0 {
		targets = []string{"."}
	}
	log, err := newLogger(stderr, o.level)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitUsage
	}
	files, err := testFiles(targets)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitUsage
	}
	ctx, stop := signalContext(log)
	defer stop()
	var suites []pipetest.Suite
	cases, failed, broken := 0, 0, 0
	for _, path := range files {
		s := pipetest.Suite{File: path}
		f, err := pipetest.Load(path)
		if err == nil {
			s.Results, err = pipetest.Run(ctx, f, log)
		}
		if err != nil {
			s.Err = err
			broken++
			fmt.Fprintf(stdout, "ERROR %s\n%s\n", path, indent(err.Error()))
		}
		for _, r := range s.Results {
			cases++
			if len(r.Failures) == 0 {
				continue
			}
			failed++
			fmt.Fprintf(stdout, "FAIL %s:%d: %s\n", path, r.Case.Line, r.Case.Name)
			for _, f := range r.Failures {
				fmt.Fprintln(stdout, indent(f))
			}
		}
		if s.Err == nil {
			fmt.Fprintf(stdout, "%s %s: %d case(s)\n", verdict(s.Results), path, len(s.Results))
		}
		suites = append(suites, s)
	}
	if o.junit != "" {
		if err := writeJUnit(o.junit, suites); err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
			return exitUsage
		}
	}
	fmt.Fprintf(stdout, "%d file(s), %d case(s): %d passed, %d failed", len(files), cases, cases-failed, failed)
	if broken > 0 {
		fmt.Fprintf(stdout, ", %d file(s) did not load", broken)
	}
	fmt.Fprintln(stdout)
	if failed > 0 || broken > 0 {
		return exitInvalid
	}
	return exitOK
}

// testFiles finds the test files the arguments name: test files as they are, a pipeline's
// NAME.test.yaml beside it, and the *.test.yaml in a folder.
func testFiles(targets []string) ([]string, error) {
	var files []string
	for _, t := range targets {
		st, err := os.Stat(t)
		if err != nil {
			return nil, err
		}
		switch {
		case st.IsDir():
			found, err := filepath.Glob(filepath.Join(t, "*.test.yaml"))
			if err != nil {
				return nil, err
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("%s holds no *.test.yaml", t)
			}
			files = append(files, found...)
		case isTestFile(t):
			files = append(files, t)
		default:
			test := strings.TrimSuffix(t, filepath.Ext(t)) + ".test" + filepath.Ext(t)
			if _, err := os.Stat(test); err != nil {
				return nil, fmt.Errorf("%s has no test file (%s)", t, test)
			}
			files = append(files, test)
		}
	}
	return files, nil
}

func verdict(results []pipetest.Result) string {
	for _, r := range results {
		if len(r.Failures) > 0 {
			return "FAIL"
		}
	}
	return "ok  "
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

func writeJUnit(path string, suites []pipetest.Suite) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pipetest.WriteJUnit(f, suites); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
