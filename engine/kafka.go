package engine

import (
	"context"
	"log/slog"

	"github.com/IBM/sarama"

	"github.com/pythia-pipe/pythia-pipe/atleastonce"
	"github.com/pythia-pipe/pythia-pipe/exactlyonce"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// KafkaRun is a pipeline wired to Kafka and ready to run: the source and sinks the file
// describes, opened on the kafka: block's connection, in the delivery mode it asks for.
type KafkaRun struct {
	Engine  *Engine
	Source  sources.Runner
	p       *pipeline.Pipeline
	closers []func() // the clients the run's sinks share: topics' metadata and rules
}

// ConnectKafka checks that the brokers answer and every topic exists (one clear error
// otherwise), then prepares the source and the writers of the sinks of the pipeline's
// delivery mode.
func ConnectKafka(p *pipeline.Pipeline, log *slog.Logger) (_ *KafkaRun, err error) {
	run := &KafkaRun{p: p}
	defer func() {
		if err != nil {
			run.close()
		}
	}()
	base, err := p.Kafka.Sarama()
	if err != nil {
		return nil, err
	}
	known, err := p.Kafka.CheckTopics(base, p.Topics())
	if err != nil {
		return nil, err
	}
	lookup, err := sarama.NewClient(p.Kafka.Brokers, base)
	if err != nil {
		return nil, err
	}
	run.closers = append(run.closers, func() { lookup.Close() })
	rules := sinks.NewRules(known, func(topic string) (kafkaconn.TopicRules, bool) {
		tr, ok := kafkaconn.DescribeRules(lookup, []string{topic})[topic]
		return tr, ok
	})
	conn, err := kafkaio.NewFranz(p.Kafka)
	if err != nil {
		return nil, err
	}
	meta, err := conn.Metadata()
	if err != nil {
		return nil, err
	}
	run.closers = append(run.closers, meta.Close)
	var writer atleastonce.Writer
	if p.ExactlyOnce() {
		if err := checkTransactions(p, conn); err != nil {
			return nil, err
		}
		run.Source, writer, err = exactlyonce.Open(p.KafkaSource(), conn, transactionProducer(p), rules, log)
	} else {
		run.Source, writer, err = atleastonce.Open(p.KafkaSource(), conn, rules, log)
	}
	if err != nil {
		return nil, err
	}
	open := func(name string, sk sinks.Compiled, report sinks.Report) (sinks.Sink, error) {
		return sk.Open(sinks.Env{Name: name, Rules: rules, Log: log, Kafka: writer, Partitions: meta}, report)
	}
	if run.Engine, err = NewEngine(p, open, log); err != nil {
		return nil, err
	}
	return run, nil
}

// transactionProducer is the settings of the one producer every sink writes through in a
// transaction: the first Kafka sink's (validate warns when the others differ).
func transactionProducer(p *pipeline.Pipeline) sinks.Producer {
	for _, sk := range p.SinksAndDLQ() {
		if t, ok := sk.Impl.(sinks.Transactional); ok {
			return t.ProducerSettings()
		}
	}
	return sinks.Producer{Acks: "all", Idempotent: true, Compression: "none"} // no Kafka sink: nothing is written
}

// Run runs until ctx ends (then drains and commits) or a fatal error.
func (r *KafkaRun) Run(ctx context.Context) error {
	defer r.close()
	return r.Engine.Run(ctx, r.Source, r.p.Source.Impl.Drain())
}

func (r *KafkaRun) close() {
	for _, c := range r.closers {
		c()
	}
	r.closers = nil
}
