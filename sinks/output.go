package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// Output is what a Kafka sink makes of a record before a producer takes it — topic,
// partition, key, body, headers, the checks against the topic's rules — shared by the sinks
// of both delivery modes.
type Output struct {
	Target Target
	Op     failure.Op   // Produce, or ProduceComputed for topic_expr
	At     string       // "sink NAME" or "dlq", in errors
	Log    *slog.Logger // with the sink's name
	env    *expr.Binder
	topics *topicChecker // partition counts, and the checks of computed topics
	rules  *Rules        // what each topic takes
	max    int           // the producer's max_message_bytes
}

// NewOutput looks topics up with lookup (a missing computed topic must be told at once, and
// a lookup must not hold up a stop for long), and their rules in rules (nil: none checked).
func NewOutput(p Producer, target Target, lookup Partitioned, rules *Rules, log *slog.Logger) *Output {
	o := &Output{Target: target, Op: failure.Produce, At: sinkAt(target), env: expr.NewBinder(target.TopicExpr, target.Key, target.PartitionBy),
		Log: log.With("sink", target.Name), topics: newTopicChecker(lookup, target.Allow), rules: rules, max: int(p.MaxMessageBytes)}
	if target.TopicExpr != nil {
		o.Op = failure.ProduceComputed
	}
	return o
}

// Prepare builds the message of rec, or returns the failure that keeps it from being
// written (dead-letter or stop). A computed topic that cannot be looked up now (brokers
// away) is waited for until ctx ends.
func (o *Output) Prepare(ctx context.Context, rec *record.Record) (kafkaio.Message, error) {
	for failures := 1; ; failures++ {
		msg, topic, err := o.message(ctx, rec)
		if err == nil {
			return msg, nil
		}
		f := failure.Judge(o.Op, o.At, topic, err)
		if f.Outcome != failure.Wait {
			return kafkaio.Message{}, f
		}
		if failures == 1 {
			what := "cannot look up the topic to write to; waiting"
			var ra failure.RegistryAnswer
			if errors.As(err, &ra) {
				what = "cannot read the sink's schema from the schema registry; waiting"
			}
			o.Log.Warn(what, "stage", o.Target.Name, "to_topic", topic, "err", err,
				"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
		}
		select {
		case <-time.After(Backoff(failures)):
		case <-ctx.Done():
			return kafkaio.Message{}, ctx.Err()
		}
	}
}

// Backoff is a sink's wait before it tries again what the broker refused, for a passing
// reason, failures times in a row.
func Backoff(failures int) time.Duration {
	return failure.Backoff(failures, 100*time.Millisecond, 5*time.Second, 2, 0.2)
}

// message builds the message of rec: topic, partition, key, body, headers.
func (o *Output) message(ctx context.Context, rec *record.Record) (kafkaio.Message, string, error) {
	topic, key, err := o.route(rec)
	if err != nil {
		return kafkaio.Message{}, topic, err
	}
	value, err := encodeBody(&o.Target, rec)
	if err != nil {
		return kafkaio.Message{}, topic, err
	}
	// nil is a null value (a tombstone); an empty body is []byte{}. The headers are the
	// record's own: stages replace them rather than change them in place.
	msg := kafkaio.Message{Topic: topic, Key: key, Value: value, Headers: rec.Headers, Timestamp: rec.Timestamp}
	n, err := o.partitions(ctx, topic) // a computed topic is checked before its rules are looked up
	if err != nil {
		return kafkaio.Message{}, topic, err
	}
	rules, _ := o.rules.Of(topic)
	if limit := o.Limit(rules); wireSize(&msg) > limit {
		if !o.Target.DLQ {
			return kafkaio.Message{}, topic, &TooLargeError{Topic: topic, Bytes: wireSize(&msg), Limit: limit}
		}
		// A copy for Fit, whose closures keep its pointer: msg itself stays off the heap on
		// the common path (it was an allocation per record in every sink).
		fit := msg
		dlq.Fit(&fit, limit, wireSize)
		msg = fit
	}
	if err := checkRules(&msg, rules, time.Now()); err != nil {
		return kafkaio.Message{}, topic, err
	}
	msg.Partition = PartitionFor(key, n)
	if by := o.Target.PartitionBy; by != nil {
		vars := o.env.Bind(rec)
		v, err := by.Run(vars)
		o.env.Release(vars)
		if err != nil {
			return kafkaio.Message{}, topic, &EncodeError{What: "repartition key", Err: err}
		}
		msg.Partition = PartitionFor(record.ToBytes(v), n)
	}
	if o.Target.SamePartition {
		if rec.Partition >= n {
			return kafkaio.Message{}, topic, fmt.Errorf("topic %s has %d partitions, fewer than the source's topic (its partition %d has nowhere to go): make it again with as many", topic, n, rec.Partition)
		}
		msg.Partition = rec.Partition
	}
	return msg, topic, nil
}

// Limit is the largest record the sink writes to a topic with rules tr: the producer's
// max_message_bytes, or the topic's max.message.bytes when lower.
func (o *Output) Limit(tr kafkaio.TopicRules) int {
	if tr.MaxBytes > 0 && tr.MaxBytes < o.max {
		return tr.MaxBytes
	}
	return o.max
}

func (o *Output) partitions(ctx context.Context, topic string) (int32, error) {
	if o.Target.TopicExpr != nil {
		return o.topics.partitions(ctx, topic)
	}
	return o.topics.lookup.Partitions(ctx, topic)
}

func (o *Output) route(rec *record.Record) (topic string, key []byte, err error) {
	return route(&o.Target, o.env, rec)
}

// route evaluates topic_expr and key for rec; each left out keeps the sink's topic or the
// record's key.
func route(t *Target, env *expr.Binder, rec *record.Record) (topic string, key []byte, err error) {
	topic, key = t.Topic, rec.Key
	if t.TopicExpr == nil && t.Key == nil {
		return topic, key, nil
	}
	vars := env.Bind(rec)
	defer env.Release(vars)
	if t.TopicExpr != nil {
		v, err := t.TopicExpr.Run(vars)
		if err != nil {
			return "", nil, &EncodeError{What: "topic", Err: err}
		}
		s, ok := v.(string)
		if !ok || s == "" {
			return "", nil, &EncodeError{What: "topic", Err: fmt.Errorf("topic_expr computed %v, not a topic name", v)}
		}
		topic = s
	}
	if t.Key != nil {
		v, err := t.Key.Run(vars)
		if err != nil {
			return topic, nil, &EncodeError{What: "key", Err: err}
		}
		key = record.ToBytes(v)
	}
	return topic, key, nil
}

// sinkAt names the sink in errors: "sink NAME", or "dlq".
func sinkAt(t Target) string {
	if t.DLQ {
		return "dlq"
	}
	return "sink " + t.Name
}
