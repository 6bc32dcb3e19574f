package stages

import (
	"context"
	"errors"
	"fmt"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// tableField is enrich's `table`: a lookup of a compacted topic's latest values.
var tableField = spec.Object("table", "Look up the latest value of each key of a compacted topic: a global table of all its partitions, kept in a local store (`state.dir`/<pipeline>/<stage>-table, its cache `state.cache`), read to the topic's end (read_committed) before records flow, then followed as the topic changes; a tombstone deletes its key. A clean stop keeps the store, read on from where it was; after a crash, or when the table's `format` or schema changed, it is read again from the topic's start. A key is expected in one partition of the topic (as a producer's partitioner puts it): across partitions the table's order is not the topic's. While Kafka (or, for avro and protobuf, the schema registry) cannot be read the table stays as it was. Lookups are not replayed: a record read again finds the table as it is then. Under `pythia-pipe test` the table holds the test file's `tables` (and a wait does not wait).",
	spec.String("topic", "The table's topic (compacted, as a rule); its records' keys are what `key` is matched against.").Require(),
	spec.Expr("key", "any", "The key looked up, computed on the record: a string as its UTF-8 bytes, a number as its decimal text, matched against the table records' keys. A null key finds nothing.").Require(),
	spec.Enum("format", "How the table's values are read, as decode reads a body: json, or avro or protobuf framed for a schema registry (each value's writer schema comes from the registry block by the id it carries). The stages after this one see the enrichment typed by the table's schema (`schema`; `schema_file`, or the subject's when the registry answers at validate time). A value that cannot be read by it is left out of the table (counted as `table_invalid`: its key is missing).", "json", "avro", "protobuf").WithDefault("json"),
	spec.String("subject", "avro, protobuf: the registry subject whose latest schema types the table's values at validate time (when the registry answers). Default: <topic>-value of the table's topic."),
	spec.String("schema_file", "avro, protobuf: a local schema that types the table's values, offline: an .avsc file, or a .proto file (with message). Values are read as this schema (Avro resolves each writer's schema to it)."),
	spec.String("message", "protobuf: the message type the table's values hold, by name (Customer or shop.v1.Customer). Default: the file's only message."),
	spec.Raw("schema", "json: the type of the table's values, as decode's `schema`. Default: any JSON value."),
	spec.Duration("max_wait", "With `on_missing: wait`, how long a record waits for its key to appear in the table; then it goes to the DLQ, its reason naming the key.").WithDefault("30s"),
)

// tableCounters describe a table lookup's numbers. The restore's are those of the stateful
// stages' stores, for /readyz and the progress line read them alike; the registry's are
// decode's.
var tableCounters = append([]spec.Counter{
	{Key: "table_keys", Metric: "enrich_table_keys", Gauge: true, Help: "Keys in an enrich stage's table."},
	{Key: "table_bytes", Metric: "enrich_table_bytes", Gauge: true, Help: "An enrich stage's table's size on disk and in memory tables."},
	{Key: "table_invalid", Metric: "enrich_table_invalid_total", Help: "Table records whose value cannot be read by the table's format and schema: their keys are left out."},
	{Key: "table_waiting", Metric: "enrich_table_waiting", Gauge: true, Help: "Records waiting for their key to appear in the table (on_missing: wait)."},
	{Key: "lookups", Metric: "enrich_table_lookups_total", Help: "Table lookups."},
	{Key: "misses", Metric: "enrich_table_misses_total", Help: "Table lookups that found nothing (after waiting, with on_missing: wait)."},
	restoringCounters[0], restoringCounters[1], restoringCounters[2],
}, registryCounters...)

// newTableLookup reads the table block: its values' format and schema as decode reads them.
func newTableLookup(c *Config, f *spec.Value) *tableLookup {
	l := &tableLookup{topic: f.String("topic"), maxWait: f.Duration("max_wait")}
	if l.topic != "" { // the default subject is the topic's
		l.framed, l.typed = readFormat(c, formatBlock{fields: f, topics: []string{l.topic}, is: "this table's values are", what: "table",
			untyped: "the table's values are not type-checked"})
		if l.framed == nil {
			l.schema = l.typed
		}
	}
	if v := f.Get("max_wait"); v.Set && l.maxWait <= 0 {
		c.Parser.Errorf(v.Pos, v.Path, "max_wait must be above 0: how long a record waits for its key")
	}
	return l
}

// readBy names what decides which of the topic's values the table keeps and how a kept one
// is read: the format, and the schema values are checked or read as (for Avro and Protobuf
// a local file's; the registry's writer schemas are each value's own).
func (l *tableLookup) readBy() string {
	f := l.framed
	if f == nil {
		return "json " + l.schema.String()
	}
	reader := "writer's"
	if f.avro != nil || f.proto != nil {
		reader = l.typed.String()
	}
	return fmt.Sprintf("%s subject=%s message=%s reader=%s", f.format, f.subject, f.message, reader)
}

// found is the schema of a table's value.
func (l *tableLookup) found() *expr.Schema {
	if l.typed == nil {
		return &expr.Schema{Kind: expr.Any}
	}
	return l.typed
}

// admit reports whether a table record's value can be read; one that cannot is counted and
// said (the first and every 100th). An error ends the reading: the stop's, or a registry's
// answer that stops the pipeline (a TableSchemaError).
func (l *tableLookup) admit(ctx context.Context, p int32, offset int64, key, value []byte) (bool, error) {
	_, err := l.decode(ctx, value)
	switch {
	case err == nil:
		return true, nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	case failure.Judge(failure.Process, "", "", err).Outcome == failure.Stop:
		return false, &TableSchemaError{Topic: l.topic, Err: err}
	}
	if n := l.invalid.Add(1); n == 1 || n%100 == 0 {
		l.log.Warn("a table record's value cannot be read by the table's schema; its key is left out", "topic", l.topic, "partition", p, "offset", offset, "key", string(key), "invalid", n, "err", err)
	}
	return false, nil
}

// decode reads a table value: framed for the registry, or JSON, of the schema when there is
// one. While the registry cannot be reached it waits, until ctx ends.
func (l *tableLookup) decode(ctx context.Context, raw []byte) (any, error) {
	if l.framed != nil {
		return l.framed.decode(ctx, raw)
	}
	v, err := record.DecodeJSON(raw)
	if err != nil {
		return nil, err
	}
	if l.schema != nil {
		return l.schema.Coerce(v, "")
	}
	return v, nil
}

// TableSchemaError is a table whose values the schema registry will not let be read (wrong
// credentials, no right to the subject): the table stops following its topic, and the
// pipeline stops.
type TableSchemaError struct {
	Topic string
	Err   error
}

func (e *TableSchemaError) Error() string {
	return fmt.Sprintf("the values of table %s cannot be read: %v", e.Topic, e.Err)
}
func (e *TableSchemaError) Unwrap() error { return e.Err }

// Stop makes the failure package judge it a stop.
func (*TableSchemaError) Stop() {}

// TableValueError is a key's value found in the table that cannot be read when it is looked
// up (its writer schema no longer resolves to the table's): the record's lookup fails.
type TableValueError struct {
	Topic, Key string
	Err        error
}

func (e *TableValueError) Error() string {
	return fmt.Sprintf("enrich: the value of key %q in table %s cannot be read: %v", e.Key, e.Topic, e.Err)
}
func (e *TableValueError) Unwrap() error { return e.Err }

// FrameTableValue writes v as a value of the stage's table: encoded with its schema, framed
// with the id the schema has under its subject (registered there first), for `pythia-pipe
// test`'s tables written as JSON. A table typed by no schema cannot.
func (e *enrich) FrameTableValue(ctx context.Context, v any) ([]byte, error) {
	if e.tbl == nil || e.tbl.framed == nil || !e.tbl.framed.typed() {
		return nil, errors.New("the table has no schema to write its values with: give it a schema_file")
	}
	return e.tbl.framed.frame(ctx, v)
}

// TableFramer is a table lookup whose values are framed for a schema registry (format avro
// or protobuf), which can write them from values.
type TableFramer interface {
	FrameTableValue(ctx context.Context, v any) ([]byte, error)
}

// TableFramerOf is the TableFramer of s's table (s, or the stage a retry wraps); ok false
// when it looks up no table, or one of JSON values.
func TableFramerOf(s Stage) (TableFramer, bool) {
	u, ok := TableUserOf(s)
	if !ok {
		return nil, false
	}
	e, ok := u.(*enrich)
	if !ok || e.tbl.framed == nil {
		return nil, false
	}
	return e, true
}
