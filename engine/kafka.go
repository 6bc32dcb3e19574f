package engine

import (
	"context"
	"log/slog"

	"github.com/pythia-pipe/pythia-pipe/pipeline"

	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// KafkaRun is a pipeline wired to Kafka and ready to run.
type KafkaRun struct {
	Engine *Engine
	Source *sources.Kafka
	p      *pipeline.Pipeline
}

// ConnectKafka checks that the brokers answer and every topic exists (one clear error
// otherwise), then prepares the consumer group source and the producers of the sinks.
func ConnectKafka(p *pipeline.Pipeline, log *slog.Logger) (*KafkaRun, error) {
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
