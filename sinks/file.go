package sinks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
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
		"(`value_base64` when not UTF-8), a tombstone as null — for local runs, `dev` and pipeline tests. " +
		"A record is done once its line is flushed and fsynced: one fsync per batch written, shared by writers waiting at once (standard output, a pipe or a terminal is not synced). " +
		"A write or fsync that fails (a full disk) stops the pipeline; what was not synced is read again. " +
		"At start, a partial last line that a crash or a full disk left is cut off before lines are appended (its records were never done, and are written again).",
	Fields:    fileFields,
	DLQFields: fileFields,
	Build:     buildFile,
	Examples:  fileExamples,
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

func (f *fileSink) Open(env Env, report Report) (Sink, error) {
	w := &fileWriter{at: "sink " + f.name, encode: f.encode, report: report}
	if f.name == "dlq" {
		w.at = "dlq"
	}
	if f.path == "-" {
		w.out = bufio.NewWriter(os.Stdout)
		return w, nil
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	file, regular, err := openAppend(f.path, f.name, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.at, err)
	}
	w.file, w.out = file, bufio.NewWriter(file)
	if regular { // fsync fails on a pipe or a terminal, and would promise nothing there
		w.sync = file.Sync
	}
	return w, nil
}

// openAppend opens path for appending, creating it if need be. A regular file whose last
// line is partial — a crash or a full disk cut a write short — is first cut back to the end
// of its last whole line, so that the lines appended after it stay valid JSON.
func openAppend(path, sink string, log *slog.Logger) (file *os.File, regular bool, err error) {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		// A pipe or a terminal: nothing to read back, and it may not be opened for reading.
		file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		return file, false, err
	}
	file, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644) // #nosec G302 -- output for people to read
	if err != nil {
		return nil, false, err
	}
	cut, err := cutPartialLine(file)
	if err != nil {
		_ = file.Close()
		return nil, false, fmt.Errorf("cutting the partial last line of %s: %w", path, err)
	}
	if cut > 0 {
		log.Warn("cut a partial last line off the file before appending: a crash or a full disk stopped a write there; "+
			"its records were never committed and are written again", "sink", sink, "file", path, "bytes", cut)
	}
	return file, true, nil
}

// tailChunk is how much of a file's end is read at a time while looking for its last '\n'.
const tailChunk = 64 << 10

// cutPartialLine truncates f just after its last '\n' (to nothing when it has none) unless
// it ends with one, and returns how many bytes it cut. It reads back from the end a chunk at
// a time: what it looks at is one line, however large the file. Bytes a power loss left
// after the last line (NULs on some file systems) are cut the same way.
func cutPartialLine(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	buf := make([]byte, min(tailChunk, size))
	keep := int64(0) // the end of the last whole line
	for end := size; end > 0; {
		n := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			keep = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if keep == size {
		return 0, nil
	}
	return size - keep, f.Truncate(keep)
}

// fileWriter appends lines; the DLQ may be written from several stage workers at once.
type fileWriter struct {
	at     string
	encode string
	report Report
	mu     sync.Mutex // guards out and flushed
	out    *bufio.Writer
	// flushed counts the flushes so far: a Write's lines are durable once a sync that began
	// after its flush (its generation) has succeeded.
	flushed uint64
	file    *os.File // nil for standard output

	sync   func() error // nil when the file is not synced (not a regular file)
	syncMu sync.Mutex   // one sync at a time; guards synced and syncErr
	synced uint64       // the generation the last successful sync covered
	// syncErr is the first failed sync, returned to every later one: Linux may mark the pages
	// it could not write clean, so a later sync could succeed without them.
	syncErr error
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

// Write appends recs and reports them written once their lines are flushed and synced to
// disk, so that no offset is committed for bytes that only sit in the page cache. A file
// that cannot be written or synced stops the pipeline: nothing is committed past the batch,
// which is read again after a restart.
func (w *fileWriter) Write(_ context.Context, recs []*record.Record) error {
	written, gen, err := w.append(recs)
	if len(written) == 0 {
		return nil
	}
	if err == nil {
		err = w.syncTo(gen)
	}
	var fail error
	if err != nil {
		fail = &failure.Error{Outcome: failure.Stop, Op: failure.Process, At: w.at, Err: fmt.Errorf("cannot write the file: %w: %s", err, diskHint(err))}
	}
	for _, rec := range written {
		w.report(rec, fail)
	}
	return nil
}

// append writes the lines of recs and flushes them; it returns the records written and the
// generation of the flush.
func (w *fileWriter) append(recs []*record.Record) (written []*record.Record, gen uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, rec := range recs {
		b, err := lineOf(rec, w.encode)
		if err != nil {
			w.report(rec, failure.Judge(failure.Produce, w.at, "", err))
			continue
		}
		_, _ = w.out.Write(append(b, '\n')) // a failed write fails the Flush below
		written = append(written, rec)
	}
	if len(written) == 0 {
		return nil, 0, nil
	}
	if err := w.out.Flush(); err != nil {
		return written, 0, err
	}
	w.flushed++
	return written, w.flushed, nil
}

// syncTo makes every flush up to generation gen durable. Writers waiting here at once share
// a sync: the first to get the lock syncs all that was flushed before it began, and those it
// covered go without.
func (w *fileWriter) syncTo(gen uint64) error {
	if w.sync == nil {
		return nil
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.syncErr != nil {
		return w.syncErr
	}
	if w.synced >= gen {
		return nil
	}
	w.mu.Lock()
	covers := w.flushed // those flushes reached the kernel before the sync below begins
	w.mu.Unlock()
	if err := w.sync(); err != nil {
		w.syncErr = err
		return err
	}
	w.synced = covers
	return nil
}

// diskHint says what to do when the file cannot be written or synced.
func diskHint(err error) string {
	const again = "; the records not synced are read again"
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "free space and restart" + again
	case errors.Is(err, syscall.EDQUOT):
		return "free space or raise the disk quota, and restart" + again
	case errors.Is(err, syscall.EFBIG):
		return "the file is as large as this process may write (ulimit -f) or its file system allows: move it away or raise the limit, and restart" + again
	}
	return "restart once the cause is fixed" + again
}

// Close flushes what is left; Write has already synced every line it reported.
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

var fileExamples = []spec.Example{
	{Title: "JSON lines to a file, and the DLQ to standard output", YAML: `
sinks:
  - {name: out, type: file, path: out.jsonl}
dlq: {type: file, path: "-"}
`},
}
