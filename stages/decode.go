package stages

import (
	"context"
	"errors"
	"fmt"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

const decodeDoc = "Parses the record body so that later stages can read its fields as `msg`."

var decodeFields = []spec.Field{
	spec.Enum("format", "How the body is parsed: json (msg is the object), text (msg is a string), bytes (msg is the raw bytes), or avro or protobuf framed for a schema registry (msg is the record; the writer's schema comes from the registry block by the id each record carries).", "json", "text", "bytes", "avro", "protobuf").WithDefault("json"),
	spec.Enum("on_null", "A record whose value is null (a tombstone: a delete on a compacted topic): pass it on with msg nil, unchecked by the schema, to reach its sinks with a null value; drop it; or send it to the DLQ.", "pass", "drop", "dlq").WithDefault("pass"),
	spec.String("subject", "avro, protobuf: the registry subject whose latest schema types msg at validate time (when the registry answers). Default: <topic>-value of the source's topic."),
	spec.String("schema_file", "avro, protobuf: a local schema that types msg, offline: an .avsc file, or a .proto file (with message). Records are read as this schema (Avro resolves each writer's schema to it)."),
	spec.String("message", "protobuf: the message type records hold, by name (Order or shop.v1.Order). Default: the file's only message."),
	spec.Raw("schema", "Optional field types (string, int, float, bool, time, bytes, any, [type], nested mappings; `?` after a type, or on the key (after?: {id: int}), marks optional; \"*\": any allows other fields). Expressions downstream are type-checked against it and records that do not match go to the DLQ."),
}

// decodeType is the decode stage type as the registry knows it.
func decodeType() *Type {
	return &Type{Name: "decode", Doc: decodeDoc, Fields: decodeFields, Build: buildDecode, Retryable: true, Lazy: true, Examples: decodeExamples,
		Look: Look{DOTShape: "parallelogram", MermaidOpen: "[/", MermaidClose: "/]", Detail: func(f *spec.Value) (string, string) {
			return " " + f.String("format"), ""
		}},
		Counters: registryCounters}
}

// registryCounters describe the records a reader of a registry's formats holds while the
// registry cannot be reached.
var registryCounters = []spec.Counter{{Key: "registry_waiting", Metric: "registry_waiting", Gauge: true,
	Help: "Records waiting for the schema registry to answer (it could not be reached)."},
	{Key: "registry_wait_ms", Help: "How long the schema registry has kept records waiting, in milliseconds: the progress line and dev say it."}}

type decode struct {
	format string
	framed *framed // avro, protobuf
	onNull string
	schema *expr.Schema // nil: no schema
	check  *expr.LazyCheck
	reads  *expr.BodyReads
	json   *record.Decoder // format json: strings share rec.Value, which stays as consumed
}

func buildDecode(c *Config) Built {
	d := &decode{format: c.Fields.String("format"), onNull: c.Fields.String("on_null"), reads: c.Reads}
	out := map[string]*expr.Schema{"json": expr.AnyMap(), "text": {Kind: expr.String}, "bytes": {Kind: expr.Bytes}}[d.format]
	var typed *expr.Schema
	d.framed, typed = readFormat(c, formatBlock{fields: c.Fields, topics: c.Topics, is: "this stage decodes", what: "stage", untyped: "msg is not type-checked"})
	switch {
	case d.framed != nil:
		out = typed
	case typed != nil:
		d.schema, out = typed, typed
	}
	fields := 0
	if d.schema != nil {
		fields = len(d.schema.Fields)
	}
	d.json = record.NewDecoder(d.unread, fields)
	d.check = d.schema.LazyCheck()
	return Built{Stage: d, Out: out}
}

// DecodeError is a record body that could not be decoded or does not match the schema.
type DecodeError struct {
	Format string
	Err    error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("decode %s: %v", e.Format, e.Err) }
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrNullValue is a tombstone met by a decode stage with on_null: dlq.
var ErrNullValue = errors.New("the value is null (a tombstone) and on_null is dlq")

func (d *decode) Process(ctx context.Context, rec *record.Record, out []Output) ([]Output, error) {
	if rec.Value == nil {
		// A tombstone has no body to parse or check: text would make it "" and JSON an
		// error, and either way the delete it stands for would be lost.
		switch d.onNull {
		case "drop":
			return out, nil
		case "dlq":
			return out, &DecodeError{Format: d.format, Err: ErrNullValue}
		}
		rec.Msg, rec.Decoded = nil, true
		return append(out, Output{Rec: rec}), nil
	}
	switch d.format {
	case "avro", "protobuf":
		v, err := d.framed.decode(ctx, rec.Value)
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err() // a stop, not the record's fault
			}
			return out, &DecodeError{Format: d.format, Err: err}
		}
		rec.Msg = v
	case "text":
		rec.Msg = string(rec.Value)
	case "bytes":
		rec.Msg = rec.Value
	default:
		var v any
		var err error
		if d.reads.Lazy() {
			v, err = d.json.DecodeLazy(rec.Value)
		} else {
			v, err = d.json.Decode(rec.Value)
		}
		if err != nil {
			return out, &DecodeError{Format: "json", Err: err}
		}
		switch _, lazy := v.(*record.Object); {
		case lazy && d.check != nil:
			if v, err = d.check.Coerce(v); err != nil {
				return out, &DecodeError{Format: "json", Err: err}
			}
		case d.schema != nil:
			if v, err = d.schema.Coerce(v, ""); err != nil {
				return out, &DecodeError{Format: "json", Err: err}
			}
		}
		rec.Msg = v
	}
	rec.Decoded = true
	return append(out, Output{Rec: rec}), nil
}

// Counters are the records waiting for the registry and for how long (none without one).
func (d *decode) Counters() map[string]int64 {
	if d.framed == nil {
		return map[string]int64{"registry_waiting": 0, "registry_wait_ms": 0}
	}
	return map[string]int64{"registry_waiting": d.framed.waiting.Load(), "registry_wait_ms": d.framed.waitedFor().Milliseconds()}
}

// unread reports a field that may stay as written (record.Raw): no expression reads it and
// the schema does not check it (it is not named, and "*" is any).
func (d *decode) unread(field string) bool {
	if !d.reads.Unread(field) {
		return false
	}
	if s := d.schema; s != nil && s.Kind != expr.Any {
		if _, named := s.Fields[field]; named || s.Open == nil || s.Open.Kind != expr.Any {
			return false
		}
	}
	return true
}

var decodeExamples = []spec.Example{
	{Title: "JSON with a schema: expressions downstream are type-checked against it", YAML: `
stages:
  - name: parse
    type: decode
    format: json
    schema:
      order_id: string
      amount: float
      note: string?            # may be absent or null
      "*": any                 # other fields allowed
    on_null: pass              # a tombstone goes on with msg == nil
`},
	{Title: "Avro framed for a schema registry, typed offline by a local schema file", YAML: `
registry:
  urls: http://localhost:8081
stages:
  - name: parse
    type: decode
    format: avro
    schema_file: schemas/order.avsc
`},
}
