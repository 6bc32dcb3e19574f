package stages

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/pythia-pipe/pythia-pipe/codec"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// framed decodes Avro and Protobuf bodies framed for a schema registry: the writer's schema
// by the id each record carries (fetched once per id), read as the stage's own schema (its
// local file, or the subject's latest version when validated) so that the values are of the
// types expressions were checked against.
type framed struct {
	format  string // avro, protobuf
	reg     *schemareg.Client
	avro    *codec.Avro  // the reader's schema; nil: each record's writer schema as it is
	proto   *codec.Proto // the reader's message; nil: the message the record's indexes name
	message string       // the protobuf message named in the file, for the writer's files
	subject string       // the stage's subject: named, or the default (inputs are registered under it)
	file    *codec.ProtoFile

	inputOnce sync.Once // frame registers the schema once
	inputID   int
	inputErr  error

	mu      sync.Mutex
	byID    map[int]*writer // by the schema id records carry
	waiting atomic.Int64    // records waiting for the registry now
	since   atomic.Int64    // when the registry first failed a record that still waits (Unix ns); 0: none waits
}

// writer is what reads the records of one writer schema: its Avro schema resolved to the
// stage's, or its Protobuf file; or why its records cannot be read.
type writer struct {
	avro  *codec.Avro
	proto *codec.ProtoFile
	err   error // an UnreadableSchemaError
}

// buildFramed reads the schema'd formats' fields of b and types its values: by its local
// schema file, else by its subject's latest schema when the registry answers (a warning and
// an untyped body when it does not).
func buildFramed(c *Config, b formatBlock, format string) (*framed, *expr.Schema) {
	f := &framed{format: format, reg: c.Registry, message: b.fields.String("message"), byID: map[int]*writer{}}
	if c.Registry == nil {
		fv := b.fields.Get("format")
		c.Parser.Errorf(fv.Pos, fv.Path, "format %s reads each record's schema from a schema registry by its id: add a registry block (registry: {urls: http://host:8081})", format)
		return f, expr.AnyMap()
	}
	subject := b.fields.Get("subject")
	name := subject.Str
	if !subject.Set && len(b.topics) > 0 {
		f.subject = schemareg.DefaultSubject(b.topics[0])
	}
	if file := b.fields.Get("schema_file"); file.Set {
		if subject.Set {
			f.subject = subject.Str
			c.Parser.Errorf(subject.Pos, subject.Path, "subject and schema_file exclude each other: the file types the %s, the registry gives each record's writer schema by id", b.what)
		}
		return f, f.local(c, b, file)
	}
	if !subject.Set {
		if len(b.topics) != 1 {
			c.Parser.Errorf(b.fields.Get("format").Pos, subject.Path, "name the subject (or a schema_file): with %d source topics there is no one default <topic>-value", len(b.topics))
			return f, expr.AnyMap()
		}
		name = schemareg.DefaultSubject(b.topics[0])
	}
	f.subject = name
	return f, f.fromSubject(c, b, subject, name)
}

// local reads b's schema file: .avsc for avro, .proto (with message) for protobuf.
func (f *framed) local(c *Config, b formatBlock, file *spec.Value) *expr.Schema {
	c.Parser.CheckFile(file, c.BaseDir)
	path := file.Str
	if !filepath.IsAbs(path) {
		path = filepath.Join(c.BaseDir, path)
	}
	ext := strings.ToLower(filepath.Ext(path))
	switch {
	case f.format == "avro" && ext != ".avsc" && ext != ".json":
		c.Parser.Errorf(file.Pos, file.Path, "format avro reads an Avro schema file (.avsc), not %q", file.Str)
		return expr.AnyMap()
	case f.format == "protobuf" && ext != ".proto":
		c.Parser.Errorf(file.Pos, file.Path, "format protobuf reads a .proto file, not %q", file.Str)
		return expr.AnyMap()
	}
	if f.format == "avro" {
		text, err := os.ReadFile(path) // #nosec G304 -- the pipeline file names it
		if err == nil {
			f.avro, err = codec.ParseAvro(string(text))
		}
		if err != nil {
			c.Parser.Errorf(file.Pos, file.Path, "%s: %v", file.Str, unwrapped(err))
			return expr.AnyMap()
		}
		return f.avro.Schema()
	}
	pf, err := codec.CompileProtoFile(context.Background(), path)
	if err != nil {
		c.Parser.Errorf(file.Pos, file.Path, "%s: %v", file.Str, unwrapped(err))
		return expr.AnyMap()
	}
	return f.pick(c, b, pf)
}

// pick is b's message of a Protobuf file: the one named, or the only one.
func (f *framed) pick(c *Config, b formatBlock, pf *codec.ProtoFile) *expr.Schema {
	m := b.fields.Get("message")
	if !m.Set && len(pf.Messages()) > 1 {
		c.Parser.Errorf(b.fields.Get("format").Pos, m.Path, "the .proto file declares %d messages (%s): name the one records hold with message",
			len(pf.Messages()), strings.Join(pf.Messages(), ", "))
		return expr.AnyMap()
	}
	p, err := pf.Message(m.Str)
	if err != nil {
		at := m.Pos
		if !m.Set {
			at = b.fields.Get("format").Pos
		}
		c.Parser.Errorf(at, m.Path, "%v", unwrapped(err))
		return expr.AnyMap()
	}
	f.proto, f.file = p, pf
	return p.Schema()
}

// fromSubject types b's values by the subject's latest schema, when the registry answers in
// time; otherwise it says why they are not type-checked.
func (f *framed) fromSubject(c *Config, b formatBlock, subject *spec.Value, name string) *expr.Schema {
	at := subject.Pos
	if !subject.Set {
		at = b.fields.Get("format").Pos
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.RegistryWait)
	defer cancel()
	s, err := f.reg.Version(ctx, name, 0)
	var reg *codec.Registered
	if err == nil {
		reg, err = codec.Compile(ctx, f.reg, s.Schema, f.format)
	}
	if err != nil {
		c.Parser.Warnf(at, subject.Path, "%s: cannot read the schema of subject %s (%v); give a schema_file to check it offline", b.untyped, name, err)
		return expr.AnyMap()
	}
	if reg.Avro != nil {
		f.avro = reg.Avro
		return f.avro.Schema()
	}
	return f.pick(c, b, reg.Proto)
}

// decode reads one framed body. While the registry cannot be reached the record waits here
// (failure's table says so) and keeps its worker: the records behind it wait too, and the
// source pauses; nothing is dead-lettered for an outage.
func (f *framed) decode(ctx context.Context, b []byte) (any, error) {
	id, payload, err := schemareg.Split(b)
	if err != nil {
		return nil, err
	}
	var indexes []int
	if f.format == "protobuf" {
		if indexes, payload, err = schemareg.SplitIndexes(payload); err != nil {
			return nil, err
		}
	}
	w, err := f.writer(ctx, id)
	switch {
	case err != nil:
		return nil, err
	case w.err != nil:
		return nil, w.err
	case w.avro != nil:
		return w.avro.Decode(payload)
	}
	p, err := w.proto.ByIndexes(indexes)
	switch {
	case err != nil:
		return nil, err
	case f.proto == nil:
		return p.Decode(payload)
	case p.Name() != f.proto.Name():
		return nil, &UnreadableSchemaError{ID: id, Err: fmt.Errorf("the record holds a %s, the stage reads %s", p.Name(), f.proto.Name())}
	}
	return f.proto.Decode(payload) // the stage's message: fields it does not know are skipped
}

// writer reads the records of schema id, once fetched and compiled; it waits out a registry
// that does not answer.
func (f *framed) writer(ctx context.Context, id int) (*writer, error) {
	f.mu.Lock()
	w, ok := f.byID[id]
	f.mu.Unlock()
	if ok {
		return w, nil
	}
	waits := false
	defer func() {
		if waits && f.waiting.Add(-1) == 0 {
			f.since.Store(0)
		}
	}()
	for attempt := 1; ; attempt++ {
		w, err := f.fetch(ctx, id)
		if err == nil {
			f.mu.Lock()
			f.byID[id] = w
			f.mu.Unlock()
			return w, nil
		}
		if failure.Judge(failure.Process, "", "", err).Outcome != failure.Wait {
			return nil, err
		}
		if !waits {
			waits = true
			f.waiting.Add(1)
		}
		f.since.CompareAndSwap(0, time.Now().UnixNano()) // at each try: another record's end may have cleared it
		if err := f.wait(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// waitedFor is how long the registry has kept records waiting (0: none waits).
func (f *framed) waitedFor() time.Duration {
	since := f.since.Load()
	if since == 0 || f.waiting.Load() == 0 {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// fetch asks the registry for schema id and compiles it; an error is the registry's answer,
// a schema that cannot be read is the writer's err.
func (f *framed) fetch(ctx context.Context, id int) (*writer, error) {
	s, err := f.reg.SchemaByID(ctx, id)
	if err != nil {
		return nil, err
	}
	reg, err := codec.Compile(ctx, f.reg, s, f.format)
	switch {
	case isRegistryError(err): // a Protobuf reference could not be fetched
		return nil, err
	case err != nil:
		return &writer{err: &UnreadableSchemaError{ID: id, Err: err}}, nil
	case reg.Proto != nil:
		return &writer{proto: reg.Proto}, nil
	case f.avro == nil:
		return &writer{avro: reg.Avro}, nil
	}
	r, err := f.avro.Resolve(reg.Avro)
	if err != nil {
		return &writer{err: &UnreadableSchemaError{ID: id, Err: err}}, nil
	}
	return &writer{avro: r}, nil
}

// wait holds a record until the next try at the registry, or until ctx ends.
func (f *framed) wait(ctx context.Context, attempt int) error {
	t := time.NewTimer(failure.Backoff(attempt, 100*time.Millisecond, 5*time.Second, 2, 0.2))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unwrapped is a codec's schema error without its "avro schema:" prefix, or err.
func unwrapped(err error) error {
	var se *codec.SchemaError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}

func isRegistryError(err error) bool {
	var e *schemareg.Error
	return errors.As(err, &e)
}

// FrameInput writes v as a record this stage reads: encoded with its schema, framed with the
// id the schema has under its subject (registered there first): for `dev` and
// `pythia-pipe test` to feed values written as JSON. A stage typed by no schema cannot.
func (d *decode) FrameInput(ctx context.Context, v any) ([]byte, error) {
	if d.framed == nil || !d.framed.typed() {
		return nil, errors.New("the decode stage has no schema to write inputs with: give it a schema_file")
	}
	return d.framed.frame(ctx, v)
}

// typed reports whether values are read as a schema of the stage's own (its file, or its
// subject's when validated), which frame writes with.
func (f *framed) typed() bool { return f.avro != nil || f.proto != nil }

// frame writes v encoded with the reader's schema, framed with the id the schema has under
// the subject (registered there first, once).
func (f *framed) frame(ctx context.Context, v any) ([]byte, error) {
	f.inputOnce.Do(func() {
		s := sr.Schema{Type: sr.TypeProtobuf}
		if f.avro != nil {
			s = sr.Schema{Schema: f.avro.Text(), Type: sr.TypeAvro}
		} else {
			s.Schema = f.file.Text()
		}
		var got sr.SubjectSchema
		got, f.inputErr = f.reg.Register(ctx, f.subject, s)
		f.inputID = got.ID
	})
	if f.inputErr != nil {
		return nil, f.inputErr
	}
	if f.avro != nil {
		return f.avro.Encode(schemareg.Append(nil, f.inputID, nil), v)
	}
	return f.proto.Encode(schemareg.Append(nil, f.inputID, f.proto.Indexes()), v)
}

// InputFramer is a stage that can write the records it reads from values (a decode of
// format avro or protobuf).
type InputFramer interface {
	FrameInput(ctx context.Context, v any) ([]byte, error)
}

// UnreadableSchemaError is a record whose writer schema (by its id) cannot be read as the
// stage's: another format, a schema that does not compile, or one incompatible with the
// stage's schema file. The record's fault: it goes to the DLQ.
type UnreadableSchemaError struct {
	ID  int
	Err error
}

func (e *UnreadableSchemaError) Error() string {
	return fmt.Sprintf("the record's writer schema (id %d): %v", e.ID, e.Err)
}
func (e *UnreadableSchemaError) Unwrap() error { return e.Err }

// RecordFault marks the error as its record's fault (see failure.RecordFault).
func (*UnreadableSchemaError) RecordFault() {}
