package pipeline

import (
	"context"
	"log/slog"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/spec"

	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// KafkaRun is a pipeline wired to Kafka and ready to run.
type KafkaRun struct {
	Engine *Engine
	Source *sources.Kafka
	p      *Pipeline
}

// Topics lists every topic a pipeline names literally: source topics, sink topics, the DLQ.
func (p *Pipeline) Topics() []string {
	plans := p.TopicPlans()
	out := make([]string, len(plans))
	for i, t := range plans {
		out[i] = t.Name
	}
	return out
}

// ConnectKafka checks that the brokers answer and every topic exists (one clear error
// otherwise), then prepares the consumer group source and the producers of the sinks.
func ConnectKafka(p *Pipeline, log *slog.Logger) (*KafkaRun, error) {
	base, err := p.Kafka.Sarama()
	if err != nil {
		return nil, err
	}
	maxBytes, err := p.Kafka.CheckTopics(base, p.Topics())
	if err != nil {
		return nil, err
	}
	src := sources.NewKafka(p.Source, p.Kafka.Brokers, sources.ConsumerConfig(base, p.Source), log)
	open := func(name string, t sinks.Target, prod sinks.Producer, report sinks.Report) (Sink, error) {
		if n, ok := maxBytes[t.Topic]; ok && t.TopicExpr == nil {
			t.MaxBytes = n
			if int64(n) < prod.MaxMessageBytes {
				log.Info("records are held to the topic's max.message.bytes", "sink", name, "to_topic", t.Topic, "max_message_bytes", n)
			}
		}
		return sinks.NewKafka(p.Kafka.Brokers, base, prod, t, report, log)
	}
	e, err := NewEngine(p, open, log)
	if err != nil {
		return nil, err
	}
	return &KafkaRun{Engine: e, Source: src, p: p}, nil
}

// Run runs until ctx ends (then drains and commits) or a fatal error.
func (r *KafkaRun) Run(ctx context.Context) error {
	return r.Engine.Run(ctx, r.Source, r.p.Source.DrainTimeout)
}

// TopicPlans lists the topics the pipeline names literally with their `create` settings:
// the source topics, the sink topics and the DLQ.
func (p *Pipeline) TopicPlans() []kafkaconn.Topic {
	var out []kafkaconn.Topic
	seen := map[string]bool{}
	add := func(name string, create *spec.Value) {
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, kafkaconn.TopicFromValue(name, create))
		}
	}
	for _, t := range p.Source.Topics {
		add(t, p.Source.Create)
	}
	for _, s := range p.Sinks {
		add(s.Topic, s.Producer.Create)
	}
	if p.DLQ != nil {
		add(p.DLQ.Topic, p.DLQ.Producer.Create)
	}
	return out
}

// ComputedTopicPlans lists, for the sinks that compute their topic, the names their
// topic_allow lists with the sink's `create` settings (topics create makes them), and the
// patterns it cannot make, each with its sink.
func (p *Pipeline) ComputedTopicPlans() (plans []kafkaconn.Topic, patterns [][2]string) {
	named := map[string]bool{}
	for _, t := range p.TopicPlans() {
		named[t.Name] = true
	}
	for _, s := range p.Sinks {
		for _, a := range s.Allow {
			switch {
			case strings.ContainsAny(a, "*?["):
				patterns = append(patterns, [2]string{a, s.Name})
			case !named[a]:
				named[a] = true
				plans = append(plans, kafkaconn.TopicFromValue(a, s.Producer.Create))
			}
		}
	}
	return plans, patterns
}
