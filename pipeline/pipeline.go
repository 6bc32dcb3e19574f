// Package pipeline reads pipeline files — ${VAR} substitution, YAML with positions, validation, the
// DAG and its graph export — into a validated model; package engine runs it.
package pipeline

import (
	"time"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// FileFields is the top level of a pipeline file.
var FileFields = []spec.Field{
	spec.Int("version", "Format version of the file: 1.").Require(),
	spec.String("name", "Pipeline name: the metrics label, and the default consumer group and client id.").Require(),
	spec.Enum("ordering", "key: records with the same key keep their order end to end; none: any order, for speed. Stages may override it.", "key", "none").WithDefault("key"),
	spec.Enum("delivery", "at_least_once: a record's offset is committed once it cleared every stage, so a crash can write it twice; exactly_once: records are read, written and committed in Kafka transactions, so read_committed readers see each output once (every sink and the DLQ on Kafka; see docs/guide/exactly-once.md).", "at_least_once", "exactly_once").WithDefault("at_least_once"),
	kafkaconn.Field,
	schemareg.Field,
	sources.Field.Require(),
	spec.List("stages", "The stages, in order; records flow from the source to the first one.", spec.Raw("stage", "A stage: name, type and that type's fields.")),
	spec.List("sinks", "Where records end.", spec.Raw("sink", "A sink: name, type and its fields.")).Require().NotEmpty(),
	sinks.DLQField,
	stateField,
	spec.Object("metrics", "Prometheus metrics and the progress line of `pythia-pipe run`.",
		spec.String("addr", "Where to serve /metrics, /healthz and /readyz, e.g. :9100; --metrics-addr overrides it. Empty: not served."),
		spec.Duration("progress", "How often `run` logs a progress line; 0 turns it off.").WithDefault("10s"),
	),
}

// Pipeline is a validated pipeline file.
type Pipeline struct {
	File     string
	Name     string
	Ordering string
	Delivery string // at_least_once, exactly_once
	Kafka    *kafkaconn.Config
	// Registry is the registry block (nil without one) and RegistryClient its client, shared
	// by the stages and sinks that read and write Avro and Protobuf.
	Registry       *schemareg.Config
	RegistryClient *schemareg.Client
	Source         *Source
	Stages         []*Stage
	Sinks          []*Sink
	DLQ            *Sink // nil: failing records stop the pipeline
	// MetricsAddr and Progress are the metrics block: where to serve metrics ("" = not
	// served) and how often to log progress (0 = never).
	MetricsAddr string
	Progress    time.Duration
	// State is where stateful stages keep their stores.
	State State
	// Entry lists where the source sends records: the first stage, or the sink(s).
	Entry []string
	// Warnings are what a valid file likely gets wrong.
	Warnings diag.List
	// IgnoredVars are the variables left unset in settings the caller said it does not use
	// (Options.Unused), sorted.
	IgnoredVars []string
}

// Stage is one stage of a pipeline with its place in the graph.
type Stage struct {
	Name     string
	Type     string
	Pos      diag.Pos
	Fields   *spec.Value
	Workers  int
	Ordering string
	Ports    []Port       // where outputs go, by port
	Impl     stages.Stage // nil for stage types whose runtime is not built yet
	In, Out  *expr.Schema // body schemas in and out, as type-checked
}

// Port is one way out of a stage: a route's condition (for a branch) and its targets.
type Port struct {
	When string // "" for plain stages and default routes
	To   []string
}

// StageByName finds a stage.
func (p *Pipeline) StageByName(name string) *Stage {
	for _, s := range p.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Source is the `source` block and what its type built.
type Source struct {
	Type   string
	Fields *spec.Value
	Impl   sources.Compiled // nil when its type is unknown
}

// KafkaSource is the source's Kafka consumer group settings; nil for another source type.
func (p *Pipeline) KafkaSource() *sources.Config {
	k, _ := p.Source.Impl.(*sources.Config)
	return k
}

// Sink is a `sinks` entry, or the `dlq` block (named "dlq"), and what its type built.
type Sink struct {
	Name   string
	Type   string
	Fields *spec.Value
	Impl   sinks.Compiled // nil when its type is unknown
}

// SinkByName finds a sink.
func (p *Pipeline) SinkByName(name string) *Sink {
	for _, s := range p.Sinks {
		if s.Name == name {
			return s
		}
	}
	return nil
}
