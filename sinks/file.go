package sinks

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

var fileFields = []spec.Field{
	spec.String("path", "The file records are appended to, one JSON line each, relative to the pipeline file; - for standard output.").Require(),
	spec.Enum("encode", "How the body is written: json, text (a string body as is) or bytes (raw). Default: JSON for decoded bodies, the consumed bytes otherwise.", "json", "text", "bytes"),
}

var fileType = &Type{
	Name: "file",
	Doc: "Appends records to a file as JSON lines — `{\"key\", \"value\", \"headers\", \"timestamp\"}`, a JSON body as JSON, others as a string " +
		"(`value_base64` when not UTF-8), a tombstone as null — for local runs, `dev` and pipeline tests. A record is done once its line is written.",
	Fields:    fileFields,
	DLQFields: fileFields,
	Build:     buildFile,
}

func buildFile(c *Config) Compiled {
	p := c.Fields.Get("path")
	f := &fileSink{name: c.Name, path: p.Str, encode: c.Fields.String("encode")}
	if p.Str != "-" && p.Str != "" {
		if !filepath.IsAbs(f.path) {
			f.path = filepath.Join(c.BaseDir, f.path)
		}
		if st, err := os.Stat(filepath.Dir(f.path)); err != nil || !st.IsDir() {
			c.Parser.Errorf(p.Pos, p.Path, "the folder of %q does not exist: create it, or write elsewhere", p.Str)
		}
	}
	return f
}

// fileSink is a validated file sink.
type fileSink struct {
	name   string
	path   string // "-": standard output
	encode string
}

func (f *fileSink) Compile(expr.Env, *diag.List) {}

func (f *fileSink) Label() string {
	if f.path == "-" {
		return "file: stdout"
	}
	return "file: " + filepath.Base(f.path)
}

func (f *fileSink) Open(_ Env, report Report) (Sink, error) {
	w := &fileWriter{at: "sink " + f.name, encode: f.encode, report: report}
	if f.name == "dlq" {
		w.at = "dlq"
	}
	if f.path == "-" {
		w.out = bufio.NewWriter(os.Stdout)
		return w, nil
	}
	file, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644) // #nosec G302 -- output for people to read
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.at, err)
	}
	w.file, w.out = file, bufio.NewWriter(file)
	return w, nil
}

// fileWriter appends lines; the DLQ may be written from several stage workers at once.
type fileWriter struct {
	at     string
	encode string
	report Report
	mu     sync.Mutex
	out    *bufio.Writer
	file   *os.File // nil for standard output
}

// line is one record as written.
type line struct {
	Key         *string           `json:"key"`
	KeyBase64   string            `json:"key_base64,omitempty"`
	Value       json.RawMessage   `json:"value"`
	ValueBase64 string            `json:"value_base64,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Timestamp   string            `json:"timestamp,omitempty"`
}

// Write appends recs and reports them written once the lines are flushed. A file that
// cannot be written stops the pipeline: nothing is committed past the batch, which is read
// again after a restart.
func (w *fileWriter) Write(_ context.Context, recs []*record.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	written := recs[:0:0]
	for _, rec := range recs {
		b, err := lineOf(rec, w.encode)
		if err != nil {
			w.report(rec, failure.Judge(failure.Produce, w.at, "", err))
			continue
		}
		_, _ = w.out.Write(append(b, '\n')) // a failed write fails the Flush below
		written = append(written, rec)
	}
	var fail error
	if err := w.out.Flush(); err != nil {
		fail = &failure.Error{Outcome: failure.Stop, Op: failure.Process, At: w.at, Err: fmt.Errorf("cannot write the file: %w", err)}
	}
	for _, rec := range written {
		w.report(rec, fail)
	}
	return nil
}

func (w *fileWriter) Close(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.out.Flush()
	if w.file != nil {
		if cerr := w.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// lineOf renders rec as one JSON line.
func lineOf(rec *record.Record, encode string) ([]byte, error) {
	l := line{Value: json.RawMessage("null")}
	if rec.Key != nil {
		if utf8.Valid(rec.Key) {
			k := string(rec.Key)
			l.Key = &k
		} else {
			l.KeyBase64 = base64.StdEncoding.EncodeToString(rec.Key)
		}
	}
	body, err := Encode(rec, encode)
	if err != nil {
		return nil, err
	}
	switch {
	case body == nil:
	case rec.Decoded && (encode == "" || encode == "json") && json.Valid(body):
		l.Value = body
	case utf8.Valid(body):
		l.Value, _ = json.Marshal(string(body)) // a string always marshals
	default:
		l.ValueBase64 = base64.StdEncoding.EncodeToString(body)
	}
	if len(rec.Headers) > 0 {
		l.Headers = make(map[string]string, len(rec.Headers))
		for _, h := range rec.Headers {
			l.Headers[h.Key] = string(h.Value)
		}
	}
	if !rec.Timestamp.IsZero() {
		l.Timestamp = rec.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(l)
}
