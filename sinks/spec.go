package sinks

import (
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
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

// FromValue reads a sink and checks what the spec cannot express (not its expressions).
func FromValue(p *spec.Parser, v *spec.Value) *KafkaSink {
	c := &KafkaSink{Name: v.String("name"), Topic: v.String("topic"), Allow: v.Strings("topic_allow"), Encode: v.String("encode"), Producer: ProducerFromValue(p, v), Fields: v}
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

// Client is the producer p describes, for kafkaio: each topic's batches held to its
// max.message.bytes as rules know it (the sinks look a topic's rules up before they write
// to it, and a producer asks for a topic's limit at its first write to it).
func (p Producer) Client(rules *Rules, retries int) kafkaio.ProducerConfig {
	return kafkaio.ProducerConfig{Acks: p.Acks, Compression: p.Compression, Linger: p.Linger, BatchBytes: int(p.BatchBytes),
		MaxMessageBytes: int(p.MaxMessageBytes), Idempotent: p.Idempotent, Retries: retries,
		BatchLimit: func(topic string) int { return rules.BatchLimit(topic, 0) }}
}
