package sinks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/pythia-pipe/pythia-pipe/codec"
	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// schemaFields are a Kafka sink's fields for encode avro and protobuf.
var schemaFields = []spec.Field{
	spec.String("subject", "encode avro, protobuf: the registry subject whose schema records are written with. Default: <topic>-value."),
	spec.Int("schema_version", "encode avro, protobuf: the subject's version to write with. Default: its latest (read once, when the sink first writes).").AtLeast(1),
	spec.String("schema_file", "encode avro, protobuf: a local schema (.avsc; .proto with message) to write with: looked up under the subject (it must be registered there), or registered with auto_register. Checked at validate time."),
	spec.String("message", "encode protobuf: the message type written, by name. Default: the schema's only (or first) message."),
	spec.Bool("auto_register", "encode avro, protobuf: register schema_file under the subject when it is not there (the registry checks its compatibility). Off by default: schemas are a contract, changed on purpose.").WithDefault("false"),
}

// SchemaEncoder writes bodies with a registry subject's schema, framed with its id. The
// schema is read (or registered) when the first record is written; until the registry
// answers, that write waits (failure's table), and a subject that is not there stops.
type SchemaEncoder struct {
	format       string // avro, protobuf
	subject      string
	version      int // 0: the latest
	local        *codec.Registered
	message      string
	autoRegister bool
	reg          *schemareg.Client

	mu      sync.Mutex
	id      int
	avro    *codec.Avro
	proto   *codec.Proto
	shape   *expr.Schema // the local schema's shape, for the validate-time check
	checked bool         // Compile has compared it with what reaches the sink
}

// buildSchemaEncoder reads the schema fields of a sink whose encode is avro or protobuf; it
// reports the fields set for another encode.
func buildSchemaEncoder(p *spec.Parser, v *spec.Value, reg *schemareg.Client, baseDir string) *SchemaEncoder {
	enc := v.String("encode")
	if enc != "avro" && enc != "protobuf" {
		for _, name := range []string{"subject", "schema_version", "schema_file", "message", "auto_register"} {
			if f := v.Get(name); f.Set {
				p.Errorf(f.Pos, f.Path, "%s applies to encode avro and protobuf (this sink writes %s)", name, or(enc, "by body"))
			}
		}
		return nil
	}
	e := &SchemaEncoder{format: enc, subject: v.String("subject"), version: int(v.Int("schema_version")), message: v.String("message"),
		autoRegister: v.Bool("auto_register"), reg: reg}
	encAt := v.Get("encode")
	if reg == nil {
		p.Errorf(encAt.Pos, encAt.Path, "encode %s writes with a schema registry's schema, framed with its id: add a registry block (registry: {urls: http://host:8081})", enc)
	}
	if e.subject == "" {
		if t := v.Get("topic"); t.Set {
			e.subject = schemareg.DefaultSubject(t.Str)
		} else {
			p.Errorf(encAt.Pos, encAt.Path+".subject", "name the subject: with topic_expr there is no one default <topic>-value")
		}
	}
	if m := v.Get("message"); m.Set && enc == "avro" {
		p.Errorf(m.Pos, m.Path, "message names a Protobuf message type: an Avro schema has one record")
	}
	file, ver, auto := v.Get("schema_file"), v.Get("schema_version"), v.Get("auto_register")
	switch {
	case auto.BoolVal && !file.Set:
		p.Errorf(auto.Pos, auto.Path, "auto_register registers schema_file under the subject: name the file")
	case file.Set && ver.Set:
		p.Errorf(ver.Pos, ver.Path, "schema_version and schema_file exclude each other: write with a registered version, or with the file's schema")
	case file.Set:
		e.readLocal(p, file, baseDir)
	}
	return e
}

// readLocal compiles the sink's schema file, reporting what is wrong with it at its field.
func (e *SchemaEncoder) readLocal(p *spec.Parser, file *spec.Value, baseDir string) {
	p.CheckFile(file, baseDir)
	path := file.Str
	if !filepath.IsAbs(path) {
		path = filepath.Join(baseDir, path)
	}
	var err error
	if e.format == "avro" {
		var text []byte
		if text, err = os.ReadFile(path); err == nil { // #nosec G304 -- the pipeline file names it
			var a *codec.Avro
			if a, err = codec.ParseAvro(string(text)); err == nil {
				e.local, e.shape = &codec.Registered{Avro: a}, a.Schema()
			}
		}
	} else {
		var f *codec.ProtoFile
		if f, err = codec.CompileProtoFile(context.Background(), path); err == nil {
			var m *codec.Proto
			if m, err = f.Message(e.message); err == nil {
				e.local, e.shape = &codec.Registered{Proto: f}, m.Schema()
			}
		}
	}
	var se *codec.SchemaError
	if errors.As(err, &se) {
		err = se.Err
	}
	if err != nil && !os.IsNotExist(err) {
		p.Errorf(file.Pos, file.Path, "%s: %v", file.Str, err)
	}
}

// compile marks the whole body as read (every field is encoded, none kept as written) and
// compares the local schema with what reaches the sink: fields the schema lacks, or that it
// needs and no record has, are warnings (such records go to the DLQ).
func (e *SchemaEncoder) compile(v *spec.Value, env expr.Env, diags *diag.List) {
	at := v.Get("encode")
	if env.Msg == nil {
		diags.Add(at.Pos, at.Path, "encode %s writes msg: put a decode stage before this sink", e.format)
		return
	}
	env.Reads.ReadsWhole()
	if e.shape == nil || e.checked || env.Msg.Kind != expr.Object || e.shape.Kind != expr.Object {
		return
	}
	e.checked = true
	for _, name := range env.Msg.FieldNames() {
		if _, ok := e.shape.Fields[name]; !ok && e.shape.Open == nil {
			diags.Warn(at.Pos, at.Path, "field %s reaches the sink, but its %s schema has no such field: such records go to the DLQ (drop it with a map)", name, e.format)
		}
	}
	if env.Msg.Open != nil {
		return // other fields may be there
	}
	for _, name := range e.shape.FieldNames() {
		if f := e.shape.Fields[name]; !f.Optional && e.format == "avro" {
			if _, ok := env.Msg.Fields[name]; !ok {
				diags.Warn(at.Pos, at.Path, "the avro schema needs field %s, which no record reaching the sink has: such records go to the DLQ", name)
			}
		}
	}
}

// Encode frames and encodes v with the subject's schema.
func (e *SchemaEncoder) Encode(v any) ([]byte, error) {
	if err := e.ready(); err != nil {
		return nil, err
	}
	var b []byte
	var err error
	if e.avro != nil {
		b, err = e.avro.Encode(schemareg.Append(nil, e.id, nil), v)
	} else {
		b, err = e.proto.Encode(schemareg.Append(nil, e.id, e.proto.Indexes()), v)
	}
	if err != nil {
		return nil, &EncodeError{What: "body", Err: fmt.Errorf("encode %s: %w", e.format, err)}
	}
	return b, nil
}

// Decode reads back a body this encoder wrote (for `pythia-pipe test` to compare values and
// `dev` to show them): nil, false when b is not one of its bodies.
func (e *SchemaEncoder) Decode(b []byte) (any, bool) {
	if e == nil {
		return nil, false
	}
	e.mu.Lock()
	id, avro, proto := e.id, e.avro, e.proto
	e.mu.Unlock()
	got, payload, err := schemareg.Split(b)
	if err != nil || (avro == nil && proto == nil) || got != id {
		return nil, false
	}
	var v any
	if avro != nil {
		v, err = avro.Decode(payload)
	} else if _, payload, err = schemareg.SplitIndexes(payload); err == nil {
		v, err = proto.Decode(payload)
	}
	return v, err == nil
}

// ready reads the schema once: the local file's id under the subject (registered first with
// auto_register), or the subject's version. A registry that does not answer is returned as
// it is, for the sink to wait and try again.
func (e *SchemaEncoder) ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.avro != nil || e.proto != nil {
		return nil
	}
	ctx := context.Background() // the client's timeout bounds each request
	var s sr.SubjectSchema
	var err error
	reg := e.local
	switch {
	case e.local != nil:
		want := sr.Schema{Schema: e.localText(), Type: e.srType()}
		if e.autoRegister {
			s, err = e.reg.Register(ctx, e.subject, want)
		} else if s, err = e.reg.Lookup(ctx, e.subject, want); err != nil {
			err = notRegistered(err, e.subject)
		}
	default:
		if s, err = e.reg.Version(ctx, e.subject, e.version); err == nil {
			if reg, err = codec.Compile(ctx, e.reg, s.Schema, e.format); err != nil && !isRegistryError(err) {
				err = &SchemaSetupError{Subject: e.subject, Err: err}
			}
		}
	}
	if err != nil {
		return err
	}
	e.id, e.avro = s.ID, reg.Avro
	if reg.Proto != nil {
		if e.proto, err = reg.Proto.Message(e.message); err != nil {
			return &SchemaSetupError{Subject: e.subject, Err: err}
		}
	}
	return nil
}

// Local is the sink's schema file as the registry holds schemas, and its subject; false
// without a file.
func (e *SchemaEncoder) Local() (subject string, s sr.Schema, ok bool) {
	if e == nil || e.local == nil {
		return "", sr.Schema{}, false
	}
	return e.subject, sr.Schema{Schema: e.localText(), Type: e.srType()}, true
}

func (e *SchemaEncoder) srType() sr.SchemaType {
	return map[string]sr.SchemaType{"avro": sr.TypeAvro, "protobuf": sr.TypeProtobuf}[e.format]
}

func (e *SchemaEncoder) localText() string {
	if e.local.Avro != nil {
		return e.local.Avro.Text()
	}
	return e.local.Proto.Text()
}

// notRegistered explains a schema file not found under its subject.
func notRegistered(err error, subject string) error {
	var re *schemareg.Error
	if errors.As(err, &re) && re.Status == 404 {
		return &SchemaSetupError{Subject: subject, Err: fmt.Errorf("schema_file is not registered under subject %s: register it, or set auto_register: true (%w)", subject, err)}
	}
	return err
}

func isRegistryError(err error) bool {
	var re *schemareg.Error
	return errors.As(err, &re)
}

// SchemaSetupError is a sink's schema that cannot be used: a subject's schema of another
// format or that does not compile, a message it lacks, a file not registered. The pipeline's
// settings are wrong: it stops.
type SchemaSetupError struct {
	Subject string
	Err     error
}

func (e *SchemaSetupError) Error() string {
	return fmt.Sprintf("the schema of subject %s: %v", e.Subject, e.Err)
}
func (e *SchemaSetupError) Unwrap() error { return e.Err }

// Stop marks the error as the pipeline's to stop on (see failure.Stopper).
func (*SchemaSetupError) Stop() {}

// encodeBody is the body t writes for rec: with its schema, or as Encode says.
func encodeBody(t *Target, rec *record.Record) ([]byte, error) {
	if t.Schema != nil && rec.Decoded && !rec.Tombstone() {
		return t.Schema.Encode(record.Plain(rec.Msg))
	}
	return Encode(rec, t.Encode)
}

func or(s, dflt string) string {
	if strings.TrimSpace(s) == "" {
		return dflt
	}
	return s
}
