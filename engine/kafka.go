package engine

import (
	"context"
	"log/slog"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/txn"
)

// KafkaRun is a pipeline wired to Kafka and ready to run: the source and sinks the file
// describes, opened on the kafka: block's connection.
type KafkaRun struct {
	Engine *Engine
	Source sources.Runner
	p      *pipeline.Pipeline
	admin  *kafkaio.Admin // looks up the rules of the topics records compute
}

// ConnectKafka checks that the brokers answer and every topic exists (one clear error
// otherwise), then prepares the consumer group source and the producers of the sinks.
func ConnectKafka(p *pipeline.Pipeline, log *slog.Logger) (run *KafkaRun, err error) {
	base, err := p.Kafka.Sarama()
	if err != nil {
		return nil, err
	}
	admin, err := kafkaio.NewAdmin(p.Kafka)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			admin.Close()
		}
	}()
	known, err := admin.Check(context.Background(), p.Topics())
	if err == nil && p.ExactlyOnce() {
		err = admin.CheckTransactions(context.Background())
	}
	if err != nil {
		return nil, err
	}
	rules := sinks.NewRules(known, func(topic string) (kafkaio.TopicRules, bool) {
		tr, ok := admin.Rules(context.Background(), topic)[topic]
		return tr, ok
	})
	var src sources.Runner
	var sess *txn.Session
	if p.ExactlyOnce() {
		eos, err := openExactlyOnce(p, rules, log)
		if err != nil {
			return nil, err
		}
		src, sess = eos, eos.Session()
	} else if src, err = p.Source.Impl.Open(sources.Env{Brokers: p.Kafka.Brokers, Base: base, Log: log}); err != nil {
		return nil, err
	}
	open := func(name string, sk sinks.Compiled, report sinks.Report) (sinks.Sink, error) {
		return sk.Open(sinks.Env{Name: name, Brokers: p.Kafka.Brokers, Base: base, Rules: rules, Log: log, Txn: sess}, report)
	}
	e, err := NewEngine(p, open, log)
	if err != nil {
		return nil, err
	}
	return &KafkaRun{Engine: e, Source: src, p: p, admin: admin}, nil
}

// Run runs until ctx ends (then drains and commits) or a fatal error.
func (r *KafkaRun) Run(ctx context.Context) error {
	defer r.admin.Close()
	return r.Engine.Run(ctx, r.Source, r.p.Source.Impl.Drain())
}
