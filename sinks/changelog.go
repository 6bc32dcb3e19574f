package sinks

import (
	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// ChangelogProducer is how a stateful stage's changes are written: acknowledged by every
// replica and idempotent, for a store is restored from them.
var ChangelogProducer = Producer{Acks: "all", Idempotent: true, Compression: "snappy", Linger: 5e6, BatchBytes: 512 << 10, MaxMessageBytes: 1048588}

// Changelog is the sink of a stateful stage's changes: its changelog topic, each change in
// the partition its record was read from (a store is an input partition's), its key and
// value as the stage made them.
func Changelog(stage, topic string) Compiled {
	return &internalSink{k: KafkaSink{Name: stage + ".changelog", Topic: topic, Encode: "bytes", Producer: ChangelogProducer},
		kind: "changelog", shape: func(t *Target) { t.SamePartition = true }}
}

// Repartition is the sink of the records a stateful stage keeps state by a computed key:
// its repartition topic, each record in the partition of that key's hash (its own key kept),
// its body encoded as a sink writes it, for the stage to read back.
func Repartition(stage, topic string, by *expr.Program) Compiled {
	return &internalSink{k: KafkaSink{Name: stage + ".repartition", Topic: topic, Producer: ChangelogProducer},
		kind: "repartition", shape: func(t *Target) { t.PartitionBy = by }}
}

// internalSink is a topic of a stateful stage's own, written as a Kafka sink writes, but to
// partitions of its choosing (shape).
type internalSink struct {
	k     KafkaSink
	kind  string // "changelog", "repartition"
	shape func(*Target)
}

func (c *internalSink) Compile(expr.Env, *diag.List) {}
func (c *internalSink) Label() string                { return c.kind + ": " + c.k.Topic }

// ProducerSettings makes the sink Transactional: under exactly-once its writes join the
// transaction with the outputs and offsets.
func (c *internalSink) ProducerSettings() Producer { return c.k.Producer }

// Render is what the sink would write (pythia-pipe test).
func (c *internalSink) Render(rec *record.Record) (Written, error) { return c.k.Render(rec) }

func (c *internalSink) Open(env Env, report Report) (Sink, error) {
	t := c.k.target()
	c.shape(&t)
	return env.Kafka(NewOutput(c.k.Producer, t, env.Partitions, env.Rules, env.Log), c.k.Producer, report)
}
