package sinks

import (
	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// ChangelogProducer is how a stateful stage's changes are written: acknowledged by every
// replica and idempotent, for a store is restored from them.
var ChangelogProducer = Producer{Acks: "all", Idempotent: true, Compression: "lz4", Linger: 5e6, BatchBytes: 512 << 10, MaxMessageBytes: 1048588}

// Changelog is the sink of a stateful stage's changes: its changelog topic, each change in
// the partition its record was read from (a store is an input partition's), its key and
// value as the stage made them.
func Changelog(stage, topic string) Compiled {
	return &changelogSink{k: KafkaSink{Name: stage + ".changelog", Topic: topic, Encode: "bytes", Producer: ChangelogProducer}}
}

type changelogSink struct{ k KafkaSink }

func (c *changelogSink) Compile(expr.Env, *diag.List) {}
func (c *changelogSink) Label() string                { return "changelog: " + c.k.Topic }

// ProducerSettings makes the changelog Transactional: under exactly-once its changes join
// the transaction with the outputs and offsets.
func (c *changelogSink) ProducerSettings() Producer { return c.k.Producer }

func (c *changelogSink) Open(env Env, report Report) (Sink, error) {
	t := c.k.target()
	t.SamePartition = true
	return env.Kafka(NewOutput(c.k.Producer, t, env.Partitions, env.Rules, env.Log), c.k.Producer, report)
}

// Render is what the changelog would be written (pythia-pipe test).
func (c *changelogSink) Render(rec *record.Record) (Written, error) { return c.k.Render(rec) }

// Repartition is the sink of the records a stateful stage keeps state by a computed key:
// its repartition topic, each record in the partition of that key's hash (its own key kept),
// its body encoded as a sink writes it, for the stage to read back.
func Repartition(stage, topic string, by *expr.Program) Compiled {
	return &repartitionSink{k: KafkaSink{Name: stage + ".repartition", Topic: topic, Producer: ChangelogProducer}, by: by}
}

type repartitionSink struct {
	k  KafkaSink
	by *expr.Program
}

func (r *repartitionSink) Compile(expr.Env, *diag.List)               {}
func (r *repartitionSink) Label() string                              { return "repartition: " + r.k.Topic }
func (r *repartitionSink) ProducerSettings() Producer                 { return r.k.Producer }
func (r *repartitionSink) Render(rec *record.Record) (Written, error) { return r.k.Render(rec) }

func (r *repartitionSink) Open(env Env, report Report) (Sink, error) {
	t := r.k.target()
	t.PartitionBy = r.by
	return env.Kafka(NewOutput(r.k.Producer, t, env.Partitions, env.Rules, env.Log), r.k.Producer, report)
}
