package pipetest

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

// Problem is one problem of a test file, at a line of it (0: the file as a whole). Load and
// Check return them, several joined by errors.Join, so that a caller can place each
// (`pythia-pipe validate --format json`).
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p *Problem) Error() string {
	if p.Line == 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// InvalidPipelineError is a test file whose pipeline is not valid, with the pipeline's
// diagnostics.
type InvalidPipelineError struct {
	Test, Pipeline string
	Diags          diag.List
	Src            []byte // the pipeline's text, for the source lines of the diagnostics
}

func (e *InvalidPipelineError) Error() string {
	var b bytes.Buffer
	diag.Print(&b, e.Diags, diag.Sources{e.Pipeline: e.Src})
	return fmt.Sprintf("%s tests %s, which is not valid:\n%s", e.Test, e.Pipeline, strings.TrimRight(b.String(), "\n"))
}

// yamlLine is yaml.v3's position in a message: "line 3: …", after "yaml: " for a syntax error.
var yamlLine = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)

// yamlProblems turns yaml.v3's error into problems at their lines: one per field of a type
// error, the one of a syntax error.
func yamlProblems(path string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return lined(path, "YAML syntax: ", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var problems []error
	for _, e := range te.Errors {
		problems = append(problems, lined(path, "", notFound.ReplaceAllString(e, "unknown field $1")))
	}
	return errors.Join(problems...)
}

// lined is msg as a problem of path, at the line it starts with when it does.
func lined(path, prefix, msg string) *Problem {
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		return &Problem{File: path, Msg: prefix + msg}
	}
	n, _ := strconv.Atoi(m[1]) // digits: only a number beyond int fails, and leaves 0
	return &Problem{File: path, Line: n, Msg: prefix + m[2]}
}
