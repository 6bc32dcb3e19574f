package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/pipetest"
)

// validateUsage is validate's usage line.
const validateUsage = "pythia-pipe validate [--strict] [--format text|json] FILE|DIR... (-: the standard input; DIR: its *.yaml and *.yml)"

// stdin is what `validate -` reads; the tests replace it.
var stdin io.Reader = os.Stdin

func isStdin(file string) bool { return file == "-" }

// stdinName names the standard input in diagnostics.
const stdinName = "<stdin>"

type validateOptions struct {
	strict bool
	format string
}

func (o *validateOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.BoolVar(&o.strict, "strict", false, "warnings count as errors: a file with any is not ok (exit 1)")
	fs.StringVar(&o.format, "format", "text", "output `FORMAT`: text (for people: problems on stderr with the source line) or json (one document on stdout, for editors and CI)")
	return fs
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	var o validateOptions
	fs := o.flags()
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: "+validateUsage)
		fs.PrintDefaults()
	}
	strict, format := &o.strict, &o.format
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return flagsFailed(err)
	}
	if len(files) == 0 || (*format != "text" && *format != "json") {
		fmt.Fprintln(stderr, "usage: "+validateUsage)
		return exitUsage
	}
	if files, err = expandDirs(files); err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitUsage
	}
	if len(files)-len(slices.DeleteFunc(slices.Clone(files), isStdin)) > 1 {
		fmt.Fprintln(stderr, "pythia-pipe validate: - (the standard input) can be read once")
		return exitUsage
	}
	report := diag.Report{Files: []diag.FileReport{}}
	code := exitOK
	for _, f := range files {
		var c fileCheck
		if isTestFile(f) {
			c = checkTest(f)
		} else {
			c = checkPipeline(f, *strict)
		}
		code = max(code, c.code)
		report.Files = append(report.Files, c.FileReport)
		if *format == "text" {
			c.print(stdout, stderr)
		}
	}
	if *format == "json" {
		report.OK = code == exitOK
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // <stdin> as written
		if err := enc.Encode(report); err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
			return exitUsage
		}
	}
	return code
}

// expandDirs replaces each folder among files by its *.yaml and *.yml files (pipelines and
// test files; not its subfolders', as test reads a folder), sorted.
func expandDirs(files []string) ([]string, error) {
	var out []string
	for _, f := range files {
		if st, err := os.Stat(f); isStdin(f) || err != nil || !st.IsDir() {
			out = append(out, f) // an unreadable file is reported as such
			continue
		}
		var found []string
		for _, pattern := range []string{"*.yaml", "*.yml"} {
			m, err := filepath.Glob(filepath.Join(f, pattern))
			if err != nil {
				return nil, err
			}
			found = append(found, m...)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s holds no *.yaml or *.yml", f)
		}
		slices.Sort(found)
		out = append(out, found...)
	}
	return out, nil
}

// fileCheck is what validate found in one file: its report, its exit code (exitOK,
// exitInvalid or exitUsage), and what text mode prints of it.
type fileCheck struct {
	diag.FileReport
	code    int
	ok      string       // the line on stdout of a file that is ok
	src     diag.Sources // the texts its diagnostics point into
	summary string       // the line on stderr after them
	err     error        // said as it is instead (an I/O error, a test file's problems)
}

// print writes c as text: problems and warnings on stderr, the line of a file that is ok on
// stdout.
func (c fileCheck) print(stdout, stderr io.Writer) {
	switch {
	case c.err != nil:
		fmt.Fprintln(stderr, c.err)
		return
	case c.src != nil:
		diag.Print(stderr, c.Diagnostics, c.src)
	}
	if c.summary != "" {
		fmt.Fprintln(stderr, c.summary)
	}
	if c.ok != "" {
		fmt.Fprintln(stdout, c.ok)
	}
}

// ioFailure is a file that could not be read.
func ioFailure(file string, err error) fileCheck {
	return fileCheck{
		FileReport: diag.FileReport{File: file, Diagnostics: diag.List{{Pos: diag.Pos{File: file}, Msg: err.Error()}}},
		code:       exitUsage,
		err:        fmt.Errorf("pythia-pipe: %w", err),
	}
}

// checkPipeline validates one pipeline file ("-": the standard input, whose relative file
// references are the current directory's). Under strict its warnings fail it.
func checkPipeline(file string, strict bool) fileCheck {
	name, base := file, filepath.Dir(file)
	var src []byte
	var err error
	if file == "-" {
		name, base = stdinName, "."
		src, err = io.ReadAll(stdin)
	} else {
		src, err = os.ReadFile(file)
	}
	if err != nil {
		return ioFailure(name, err)
	}
	c := fileCheck{FileReport: diag.FileReport{File: name, OK: true}, src: diag.Sources{name: src}}
	p, diags := pipeline.Parse(name, src, pipeline.Options{BaseDir: base})
	switch {
	case len(diags) > 0:
		c.Diagnostics, c.OK, c.code = diags, false, exitInvalid
		c.summary = name + ": " + diags.Count()
	case len(p.Warnings) > 0 && strict:
		c.Diagnostics, c.OK, c.code = p.Warnings, false, exitInvalid
		c.summary = fmt.Sprintf("%s: %d warning(s), which --strict counts as errors", name, len(p.Warnings))
	case len(p.Warnings) > 0:
		c.Diagnostics = p.Warnings
		c.ok = fmt.Sprintf("%s: ok, with %d warning(s)", name, len(p.Warnings))
	default:
		c.ok = name + ": ok"
	}
	if c.ok != "" {
		for _, note := range p.StateNotes() {
			c.ok += "\n  " + note
		}
	}
	return c
}

// isTestFile reports a pipeline test file (NAME.test.yaml), which validate checks as one.
func isTestFile(name string) bool {
	return strings.HasSuffix(name, ".test.yaml") || strings.HasSuffix(name, ".test.yml")
}

// checkTest checks a test file without running it: its form, its pipeline, the sinks it
// names. Its diagnostics are its problems, at their lines, and those of its pipeline when
// that is not valid (which name the pipeline's file). The warnings of a valid pipeline are
// its own file's, not the test file's.
func checkTest(file string) fileCheck {
	f, err := pipetest.Load(file)
	if errors.Is(err, fs.ErrNotExist) {
		return ioFailure(file, err)
	}
	if err == nil {
		err = pipetest.Check(f)
	}
	if err != nil {
		return fileCheck{FileReport: diag.FileReport{File: file, Diagnostics: testDiagnostics(file, err)}, code: exitInvalid, err: err}
	}
	return fileCheck{
		FileReport: diag.FileReport{File: file, OK: true, Pipeline: f.Pipeline, Cases: len(f.Cases)},
		ok:         fmt.Sprintf("%s: ok (%d test case(s) of %s; pythia-pipe test runs them)", file, len(f.Cases), f.Pipeline),
	}
}

// testDiagnostics places the problems pipetest found in a test file.
func testDiagnostics(file string, err error) diag.List {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out diag.List
		for _, e := range joined.Unwrap() {
			out = append(out, testDiagnostics(file, e)...)
		}
		return out
	}
	var p *pipetest.Problem
	var inv *pipetest.InvalidPipelineError
	switch {
	case errors.As(err, &inv):
		return append(diag.List{{Pos: diag.Pos{File: inv.Test}, Msg: fmt.Sprintf("tests %s, which is not valid", inv.Pipeline)}}, inv.Diags...)
	case errors.As(err, &p):
		return diag.List{{Pos: diag.Pos{File: p.File, Line: p.Line}, Msg: p.Msg}}
	}
	return diag.List{{Pos: diag.Pos{File: file}, Msg: err.Error()}}
}

// load reads and validates one pipeline file, printing its diagnostics (errors, or the
// warnings of a valid file) to w. unused are the settings the command replaces
// (pipeline.Options.Unused). ok is false when the file is invalid; ioErr is true when it could
// not be read at all.
func load(file string, opts pipeline.Options, w io.Writer) (p *pipeline.Pipeline, ok, ioErr bool) {
	src, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(w, "pythia-pipe: %v\n", err)
		return nil, false, true
	}
	opts.BaseDir = filepath.Dir(file)
	p, diags := pipeline.Parse(file, src, opts)
	if len(diags) > 0 {
		diag.Print(w, diags, diag.Sources{file: src})
		fmt.Fprintf(w, "%s: %s\n", file, diags.Count())
		return nil, false, false
	}
	diag.Print(w, p.Warnings, diag.Sources{file: src})
	return p, true, false
}

// connect opens the admin of p's kafka: block once the brokers have answered and topics are
// found to exist (kafkaio's one-line explanations otherwise); the caller closes it.
func connect(p *pipeline.Pipeline, topics []string) (*kafkaio.Admin, error) {
	admin, err := kafkaio.NewAdmin(p.Kafka)
	if err != nil {
		return nil, err
	}
	if _, err := admin.Check(context.Background(), topics); err != nil {
		admin.Close()
		return nil, err
	}
	return admin, nil
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
func prepare(fs *flag.FlagSet, args []string, level *string, usage string, opts pipeline.Options, stderr io.Writer) (p *pipeline.Pipeline, log *slog.Logger, code int) {
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
	p, ok, ioErr := load(files[0], opts, stderr)
	switch {
	case ioErr:
		return nil, nil, exitUsage
	case !ok:
		return nil, nil, exitInvalid
	}
	return p, log, exitOK
}
