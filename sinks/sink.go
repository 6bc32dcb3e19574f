// Package sinks holds where records end: the registered sink types (kafka, file), each
// usable as a `sinks` entry and, when it says so, as the dead-letter queue.
package sinks

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// Sink is where records end at run time. Write may block while the sink is full; the outcome
// of every record written reaches the Report given when the sink was opened, exactly once.
// Close waits for the outstanding outcomes until ctx ends.
type Sink interface {
	Write(ctx context.Context, recs []*record.Record) error
	Close(ctx context.Context) error
}

// ErrAborted is the outcome of a write whose transaction was aborted: nothing of it is
// visible to read_committed readers, and its record is read again from the committed
// offsets. The engine counts the record as done in the aborted transaction, nothing more.
var ErrAborted = errors.New("its transaction was aborted: the record is read again")

// Report receives the outcome of every record written to a sink, once: nil when it is
// written (for Kafka: the broker acknowledged it), ErrAborted when its transaction was
// aborted (exactly-once: read again, nothing written), otherwise a *failure.Error judged
// dead-letter or stop. Writes refused for a passing reason are not reported: the sink writes
// them again, in order, until they pass. Writes still waiting when the sink closes are never
// reported: their records are not done, so they are read again after a restart.
type Report func(rec *record.Record, err error)

// Type describes one sink type: its spec and how to build it.
type Type struct {
	Name string
	Doc  string
	// Fields are the type's own fields in a `sinks` entry, beside CommonFields.
	Fields []spec.Field
	// DLQFields are its fields as the `dlq` block, beside `type`; nil when the type cannot
	// be the dead-letter queue.
	DLQFields []spec.Field
	// Build checks what the spec cannot say alone; it reports problems through c.Parser and
	// never panics on input.
	Build func(c *Config) Compiled
	// Counters describes the numbers a sink of this type keeps of its own (its Counters()),
	// for the metrics that export them; a number not described is not exported.
	Counters []spec.Counter
	// Examples are printed on the type's reference page; each validates.
	Examples []spec.Example
}

// Registry lists every sink type by name.
func Registry() map[string]*Type {
	return map[string]*Type{
		"kafka": kafkaType,
		"file":  fileType,
	}
}

// TypeNames lists the registered sink types, sorted.
func TypeNames() []string { return slices.Sorted(maps.Keys(Registry())) }

// CommonFields are the fields every `sinks` entry has, besides those of its type.
var CommonFields = []spec.Field{
	spec.String("name", "Unique name of the sink; stages send to it with `to`.").Require(),
	spec.String("type", "The sink type: "+strings.Join(TypeNames(), " or ")+".").Require(),
}

// dlqCommon are the fields every `dlq` block has, besides those of its type.
var dlqCommon = []spec.Field{
	spec.String("type", "The DLQ type: "+strings.Join(dlqTypes(), " or ")+".").Require(),
}

func dlqTypes() []string {
	var out []string
	for _, n := range TypeNames() {
		if Registry()[n].DLQFields != nil {
			out = append(out, n)
		}
	}
	return out
}

// DLQField is the `dlq` block of a pipeline file; its type picks its fields.
var DLQField = spec.Raw("dlq", "The dead-letter queue: records that failed a stage, as consumed, with headers saying why. Without it a failing record stops the pipeline. A sink type with its fields: "+strings.Join(dlqTypes(), " or ")+".")

// Config is what Build is given: the sink's parsed fields and where it stands.
type Config struct {
	Name     string // "dlq" for the dead-letter queue
	DLQ      bool
	Fields   *spec.Value
	Parser   *spec.Parser
	BaseDir  string            // the pipeline file's folder, against which file names resolve
	Registry *schemareg.Client // the pipeline's schema registry; nil without a registry block
}

// Base is what every sink of a file is built with.
type Base struct {
	Dir      string            // the pipeline file's folder
	Registry *schemareg.Client // nil without a registry block
}

// Compiled is a validated sink of some type.
type Compiled interface {
	// Compile compiles the sink's own expressions against the schema of the bodies that
	// reach it (nil before a decode stage).
	Compile(env expr.Env, diags *diag.List)
	// Label says in a graph where records go: "kafka: orders-out".
	Label() string
	// Open starts the sink for a run; every outcome goes to report.
	Open(env Env, report Report) (Sink, error)
}

// Transactional is a sink that can write in the source's Kafka transaction (delivery:
// exactly_once): every such sink writes through one transactional producer, tuned by the
// first one's settings.
type Transactional interface {
	ProducerSettings() Producer
}

// TopicWriter is a sink writing to Kafka topics: the topics the file names (with their
// `create` settings), and the names and patterns it may compute.
type TopicWriter interface {
	Topics() []kafkaconn.Topic
	Computed() (names []kafkaconn.Topic, patterns []string)
}

// SchemaHolder is a sink that may encode bodies with a registry's schema (encode: avro |
// protobuf): dev and pythia-pipe test register its schema file, and read what it wrote back.
type SchemaHolder interface {
	// BodySchema is its encoder; nil when it encodes with none (whose Local and Decode then
	// say so).
	BodySchema() *SchemaEncoder
}

// Env is what a sink is opened with at run time.
type Env struct {
	Name  string // the sink's name; "dlq" for the dead-letter queue
	Rules *Rules // what the topics take; nil: nothing is checked before writing
	Log   *slog.Logger
	// Kafka opens the writer of a Kafka sink, as the run's delivery mode writes: with a
	// producer of its own settings, or in the source's transactions. Nil without Kafka.
	Kafka func(out *Output, p Producer, report Report) (Sink, error)
	// Partitions looks topics up for the Kafka sinks.
	Partitions Partitioned
}

// Parse reads a `sinks` entry (dlq false) or the `dlq` block: its `type` picks the fields,
// and the type builds it. An unknown type is reported with a suggestion, and yields a nil
// Compiled; the common fields are still parsed so other checks can go on.
func Parse(p *spec.Parser, n *yaml.Node, path string, at diag.Pos, dlq bool, base Base) (*spec.Value, Compiled) {
	common, names, what := CommonFields, TypeNames(), "sink"
	fieldsOf := func(t *Type) []spec.Field { return t.Fields }
	if dlq {
		common, names, what = dlqCommon, dlqTypes(), "dlq"
		fieldsOf = func(t *Type) []spec.Field { return t.DLQFields }
	}
	typ := Registry()[p.TypeOf(n, path, what, names)]
	if typ == nil {
		return p.ParseObject(spec.KnownOnly(n, common), common, path, at), nil
	}
	v := p.ParseObject(n, append(append([]spec.Field(nil), common...), fieldsOf(typ)...), path, at)
	name := "dlq" // the dlq block has no name of its own
	if !dlq {
		name = v.String("name")
	}
	return v, typ.Build(&Config{Name: name, DLQ: dlq, Fields: v, Parser: p, BaseDir: base.Dir, Registry: base.Registry})
}
