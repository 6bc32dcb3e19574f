// Package sinks holds where records end: the Kafka sink and the dead-letter queue.
package sinks

import (
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// producerFields tune the producer of a sink or of the DLQ.
var producerFields = []spec.Field{
	spec.Enum("acks", "Acknowledgement a write waits for: all in-sync replicas, the leader only, or none.", "all", "leader", "none").WithDefault("all"),
	spec.Enum("compression", "Compression of produced batches.", "none", "gzip", "snappy", "lz4", "zstd").WithDefault("none"),
	spec.Duration("linger", "How long the producer waits to fill a batch.").WithDefault("5ms"),
	spec.Size("batch_bytes", "Bytes a batch may grow to before it is sent.").WithDefault("512KiB").AtLeast(1024),
	spec.Bool("idempotent", "Idempotent producer: broker-side de-duplication of retried writes (needs acks: all).").WithDefault("true"),
	spec.Size("max_message_bytes", "The largest record written, key, value and headers counted as the producer does; a larger one goes to the DLQ (the DLQ cuts its value instead). Lowered at start to the topic's max.message.bytes.").WithDefault("1048588").AtLeast(1024),
	kafkaconn.CreateField,
}

// KafkaFields are the fields of a `sinks` entry of type kafka.
var KafkaFields = append([]spec.Field{
	spec.String("name", "Unique name of the sink; stages send to it with `to`.").Require(),
	spec.Enum("type", "The sink type.", "kafka").Require(),
	spec.String("topic", "The topic written to."),
	spec.Expr("topic_expr", "string", "Computes the topic per record, instead of topic. A computed topic that is not valid, not allowed or missing sends its record to the DLQ; records never create topics."),
	spec.Strings("topic_allow", "The topics topic_expr may compute: names, or patterns where * stands for any characters (payments-*)."),
	spec.Expr("key", "any", "Computes the output key. Default: the input record's key."),
	spec.Enum("encode", "How the body is written: json, text (a string body as is) or bytes (raw). Default: JSON for decoded bodies, the consumed bytes otherwise.", "json", "text", "bytes"),
}, producerFields...)

// KafkaCounters describes the numbers a Kafka sink (and the DLQ's) keeps of its own
// (Kafka.Counters), for the metrics that export them. It becomes part of the Kafka sink's
// type once sinks are registered types like stages.
var KafkaCounters = []spec.Counter{
	{Key: "refused", Metric: "sink_refused_total", Help: "Writes the broker refused for a passing reason (each waits and is written again, in order)."},
	{Key: "rewritten", Metric: "sink_rewritten_total", Help: "Writes written a second time because the broker took them while an earlier one of their partition was refused."},
}

// DLQFields are the fields of the `dlq` block.
var DLQFields = append([]spec.Field{
	spec.Enum("type", "The DLQ type.", "kafka").Require(),
	spec.String("topic", "The dead-letter topic.").Require(),
}, producerFields...)

// DLQField is the `dlq` block of a pipeline file.
var DLQField = spec.Object("dlq", "The dead-letter queue: records that failed a stage, as consumed, with headers saying why. Without it a failing record stops the pipeline.", DLQFields...)

// Config is a validated Kafka sink. TopicExpr and Key are compiled once the schema reaching
// the sink is known.
type Config struct {
	Name      string
	Topic     string
	TopicExpr *expr.Program
	Allow     []string // topic_allow
	Key       *expr.Program
	Encode    string // "" = by body: JSON when decoded, the consumed bytes otherwise
	Producer  Producer
	Fields    *spec.Value
}

// FromValue reads a sink and checks what the spec cannot express (not its expressions).
func FromValue(p *spec.Parser, v *spec.Value) *Config {
	c := &Config{Name: v.String("name"), Topic: v.String("topic"), Allow: v.Strings("topic_allow"), Encode: v.String("encode"), Producer: ProducerFromValue(p, v), Fields: v}
	switch t, te, ta := v.Get("topic"), v.Get("topic_expr"), v.Get("topic_allow"); {
	case t.Set && te.Set:
		p.Errorf(te.Pos, te.Path, "topic and topic_expr exclude each other: write the topic, or compute it")
	case !t.Set && !te.Set:
		p.Errorf(v.Pos, v.Path+".topic", "missing required field \"topic\" (the topic written to; or topic_expr to compute it)")
	case t.Set:
		kafkaconn.CheckTopicName(p, t)
		if ta.Set {
			p.Errorf(ta.Pos, ta.Path, "topic_allow limits the topics topic_expr computes: with a fixed topic it has nothing to do")
		}
	case !ta.Set:
		p.Warnf(te.Pos, te.Path, "without topic_allow, records can send themselves to any topic this user may write to: list the topics it may compute, e.g. topic_allow: [\"orders-*\"]")
	default:
		for _, pat := range ta.Items {
			checkPattern(p, pat)
		}
	}
	return c
}

// checkPattern reports a topic_allow entry no valid topic name could match.
func checkPattern(p *spec.Parser, v *spec.Value) {
	if _, err := path.Match(v.Str, ""); err != nil {
		p.Errorf(v.Pos, v.Path, "%q is not a valid pattern: %v", v.Str, err)
		return
	}
	plain := strings.NewReplacer("*", "x", "?", "x").Replace(v.Str)
	if msg := kafkaconn.TopicNameProblem(plain); msg != "" {
		p.Errorf(v.Pos, v.Path, "no topic can match %q: %s", v.Str, strings.Replace(msg, strconv.Quote(plain), strconv.Quote(v.Str), 1))
	}
}

// DLQ is the validated dead-letter queue.
type DLQ struct {
	Topic    string
	Producer Producer
}

// DLQFromValue reads the dlq block.
func DLQFromValue(p *spec.Parser, v *spec.Value) *DLQ {
	kafkaconn.CheckTopicName(p, v.Get("topic"))
	return &DLQ{Topic: v.String("topic"), Producer: ProducerFromValue(p, v)}
}

// Producer is the validated producer tuning of a sink or DLQ.
type Producer struct {
	Acks            string
	Compression     string
	Linger          time.Duration
	BatchBytes      int64
	Idempotent      bool
	MaxMessageBytes int64
	Create          *spec.Value
}

// ProducerFromValue reads the producer tuning and checks what the spec cannot express.
func ProducerFromValue(p *spec.Parser, v *spec.Value) Producer {
	pr := Producer{
		Acks:            v.String("acks"),
		Compression:     v.String("compression"),
		Linger:          v.Duration("linger"),
		BatchBytes:      v.Int("batch_bytes"),
		Idempotent:      v.Bool("idempotent"),
		MaxMessageBytes: v.Int("max_message_bytes"),
		Create:          v.Get("create"),
	}
	if pr.Idempotent && pr.Acks != "all" {
		at := v.Get("acks")
		p.Errorf(at.Pos, at.Path, "an idempotent producer needs acks: all (or set idempotent: false)")
	}
	return pr
}
