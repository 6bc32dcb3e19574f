package diag

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Severities as JSON names them.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// jsonDiagnostic is a Diagnostic as JSON: a flat object that editors and CI read without
// knowing Go's types. Line and col are 1-based (col counts runes), 0 when unknown; path is ""
// for a problem of the file as a whole.
type jsonDiagnostic struct {
	Severity string `json:"severity"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Path     string `json:"path"`
	Message  string `json:"message"`
}

// MarshalJSON writes d as {"severity","file","line","col","path","message"}; the message
// is d.Msg alone ("warning: " is the severity's).
func (d Diagnostic) MarshalJSON() ([]byte, error) {
	sev := SeverityError
	if d.Warning {
		sev = SeverityWarning
	}
	return marshal(jsonDiagnostic{Severity: sev, File: d.Pos.File, Line: d.Pos.Line, Col: d.Pos.Col, Path: d.Path, Message: d.Msg})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Diagnostic) UnmarshalJSON(b []byte) error {
	var j jsonDiagnostic
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Severity != SeverityError && j.Severity != SeverityWarning {
		return fmt.Errorf("severity %q is not %s or %s", j.Severity, SeverityError, SeverityWarning)
	}
	*d = Diagnostic{Pos: Pos{File: j.File, Line: j.Line, Col: j.Col}, Path: j.Path, Msg: j.Message, Warning: j.Severity == SeverityWarning}
	return nil
}

// Report is what checking files found, as one JSON document (`pythia-pipe validate --format
// json`). OK is true when every file is.
type Report struct {
	OK    bool         `json:"ok"`
	Files []FileReport `json:"files"`
}

// FileReport is one file checked. A file that could not be read is not OK, with the reason
// as an error of the file as a whole. Diagnostics may point into other files (a test file's
// pipeline); each names its own. Pipeline and Cases are a test file's: the pipeline it tests
// and its number of cases.
type FileReport struct {
	File        string `json:"file"`
	OK          bool   `json:"ok"`
	Pipeline    string `json:"pipeline,omitempty"`
	Cases       int    `json:"cases,omitempty"`
	Diagnostics List   `json:"diagnostics"`
}

// MarshalJSON writes an empty Diagnostics as [], never null.
func (f FileReport) MarshalJSON() ([]byte, error) {
	type plain FileReport // without this method
	if f.Diagnostics == nil {
		f.Diagnostics = List{}
	}
	return marshal(plain(f))
}

// marshal is json.Marshal leaving <, > and & as they are: whether they are escaped is the
// caller's choice (json.Encoder.SetEscapeHTML), which applies to what a MarshalJSON returns
// but cannot undo an escape already made.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
