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
