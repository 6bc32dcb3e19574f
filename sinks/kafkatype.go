package sinks

import (
	"fmt"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

var kafkaType = &Type{
	Name: "kafka",
	Doc:  "Writes records to a Kafka topic, or to one computed per record, keeping each output partition's order through refused writes.",
	Fields: append([]spec.Field{
		spec.String("topic", "The topic written to."),
		spec.Expr("topic_expr", "string", "Computes the topic per record, instead of topic. A computed topic that is not valid, not allowed or missing sends its record to the DLQ; records never create topics."),
		spec.Strings("topic_allow", "The topics topic_expr may compute: names, or patterns where * stands for any characters (payments-*)."),
		spec.Expr("key", "any", "Computes the output key. Default: the input record's key."),
		spec.Enum("encode", "How the body is written: json, text (a string body as is), bytes (raw), or avro or protobuf with a registry subject's schema, framed with its id. Default: JSON for decoded bodies, the consumed bytes otherwise.", "json", "text", "bytes", "avro", "protobuf"),
	}, append(append([]spec.Field(nil), schemaFields...), producerFields...)...),
	DLQFields: append([]spec.Field{
		spec.String("topic", "The dead-letter topic.").Require(),
	}, producerFields...),
	Build:    buildKafka,
	Examples: kafkaExamples,
	Counters: []spec.Counter{
		{Key: "refused", Metric: "sink_refused_total", Help: "Writes the broker refused for a passing reason (each waits and is written again, in order)."},
		{Key: "rewritten", Metric: "sink_rewritten_total", Help: "Writes written a second time because the broker took them while an earlier one of their partition was refused."},
		{Key: "held", Metric: "sink_held_partitions", Gauge: true, Help: "Output partitions whose writes are held after a refusal: they wait, and are written again in order."},
		{Key: "wait_ms", Metric: "sink_wait_milliseconds", Gauge: true, Help: "How long the output partition waiting longest has gone without a write acknowledged while it has writes out (0: every partition moves); measured to about a second. The progress line and /healthz name the sink from 5 s."},
	},
}

func buildKafka(c *Config) Compiled {
	if c.DLQ {
		kafkaconn.CheckTopicName(c.Parser, c.Fields.Get("topic"))
		return &KafkaSink{Name: "dlq", Topic: c.Fields.String("topic"), Producer: ProducerFromValue(c.Parser, c.Fields), Fields: c.Fields, DLQ: true}
	}
	k := FromValue(c.Parser, c.Fields)
	k.Schema = buildSchemaEncoder(c.Parser, c.Fields, c.Registry, c.BaseDir)
	return k
}

// KafkaSink is a validated Kafka sink (or DLQ). TopicExpr and Key are compiled once the
// schema reaching the sink is known.
type KafkaSink struct {
	Name      string
	Topic     string
	TopicExpr *expr.Program
	Allow     []string // topic_allow
	Key       *expr.Program
	Encode    string         // "" = by body: JSON when decoded, the consumed bytes otherwise
	Schema    *SchemaEncoder // encode avro, protobuf; nil otherwise
	Producer  Producer
	Fields    *spec.Value
	DLQ       bool
}

// Compile compiles topic_expr and key against the bodies that reach the sink.
func (k *KafkaSink) Compile(env expr.Env, diags *diag.List) {
	if v := k.Fields.Get("topic_expr"); v.Set {
		k.TopicExpr = expr.Compile(v, env, expr.WantString, diags)
	}
	if v := k.Fields.Get("key"); v.Set {
		k.Key = expr.Compile(v, env, expr.WantAny, diags)
	}
	if k.Schema != nil {
		k.Schema.compile(k.Fields, env, diags)
	}
}

// Label is the topic, or the expression computing it and the topics it may compute.
func (k *KafkaSink) Label() string {
	if k.Topic != "" {
		return "kafka: " + k.Topic
	}
	allowed := "any topic"
	if len(k.Allow) > 0 {
		allowed = strings.Join(k.Allow, ", ")
	}
	return "kafka: = " + diag.Abbreviate(k.Fields.String("topic_expr"), 40) + " ∈ " + allowed
}

// Topics is the topic the sink names, with its create settings.
func (k *KafkaSink) Topics() []kafkaconn.Topic {
	if k.Topic == "" {
		return nil
	}
	return []kafkaconn.Topic{kafkaconn.TopicFromValue(k.Topic, k.Producer.Create)}
}

// Computed lists the names topic_allow gives, with the sink's create settings, and its
// patterns.
func (k *KafkaSink) Computed() (names []kafkaconn.Topic, patterns []string) {
	for _, a := range k.Allow {
		if strings.ContainsAny(a, "*?[") {
			patterns = append(patterns, a)
		} else {
			names = append(names, kafkaconn.TopicFromValue(a, k.Producer.Create))
		}
	}
	return names, patterns
}

// target is what the sink writes, as its Write and Render see it.
func (k *KafkaSink) target() Target {
	return Target{Name: k.Name, Topic: k.Topic, TopicExpr: k.TopicExpr, Allow: k.Allow, Key: k.Key, Encode: k.Encode, Schema: k.Schema, DLQ: k.DLQ}
}

// ProducerSettings is the sink's producer tuning: a Kafka sink can write in a transaction
// (Transactional).
func (k *KafkaSink) ProducerSettings() Producer { return k.Producer }

// BodySchema is the schema the sink encodes bodies with, nil for none (SchemaHolder).
func (k *KafkaSink) BodySchema() *SchemaEncoder { return k.Schema }

// Open starts the producer; a named topic's max.message.bytes lowers the largest record.
func (k *KafkaSink) Open(env Env, report Report) (Sink, error) {
	t := k.target()
	if tr, ok := env.Rules.Of(t.Topic); ok && t.TopicExpr == nil && tr.MaxBytes > 0 && int64(tr.MaxBytes) < k.Producer.MaxMessageBytes {
		env.Log.Info("records are held to the topic's max.message.bytes", "sink", k.Name, "to_topic", t.Topic, "max_message_bytes", tr.MaxBytes)
	}
	if env.Kafka == nil {
		return nil, fmt.Errorf("%s: no Kafka to write to", sinkAt(t)) // an engine bug: Kafka sinks run with a Kafka
	}
	return env.Kafka(NewOutput(k.Producer, t, env.Partitions, env.Rules, env.Log), k.Producer, report)
}

var kafkaExamples = []spec.Example{
	{Title: "A topic, keyed, compressed, with the settings topics create uses", YAML: `
sinks:
  - name: out
    type: kafka
    topic: orders-out
    key: key ?? "none"
    compression: zstd
    create: {partitions: 6, replication_factor: 3, configs: {min.insync.replicas: "2"}}
dlq:
  type: kafka
  topic: orders-dlq
`},
	{Title: "A topic computed per record, within an allow-list", YAML: `
stages:
  - name: parse
    type: decode
    schema: {currency: string, "*": any}
sinks:
  - name: by-currency
    type: kafka
    topic_expr: '"payments-" + lower(msg.currency)'
    topic_allow: [payments-*]
`},
	{Title: "Avro with a registry subject's schema", YAML: `
registry:
  urls: http://localhost:8081
stages:
  - name: parse
    type: decode
    schema: {order_id: string, "*": any}
sinks:
  - name: out
    type: kafka
    topic: orders-out
    encode: avro
    subject: orders-out-value
`},
}
