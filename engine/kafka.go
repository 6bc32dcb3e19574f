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
	open := func(name string, sk sinks.Compiled, report sinks.Report) (sinks.Sink, error) {
		return sk.Open(sinks.Env{Name: name, Brokers: p.Kafka.Brokers, Base: base, MaxBytes: maxBytes, Log: log}, report)
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
