package engine

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/pythia-pipe/pythia-pipe/atleastonce"
	"github.com/pythia-pipe/pythia-pipe/exactlyonce"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/kafkaio/saramaio"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// KafkaRun is a pipeline wired to Kafka and ready to run: the source and sinks the file
// describes, opened on the kafka: block's connection, in the delivery mode it asks for.
type KafkaRun struct {
	Engine *Engine
	Source sources.Runner
	p      *pipeline.Pipeline
	admin  *kafkaio.Admin // the sinks' lookups: partition counts, the rules of computed topics
}

// ConnectKafka checks that the brokers answer and every topic exists (one clear error
// otherwise), then prepares the source and the writers of the sinks of the pipeline's
// delivery mode.
func ConnectKafka(p *pipeline.Pipeline, log *slog.Logger) (_ *KafkaRun, err error) {
	admin, err := kafkaio.NewAdmin(p.Kafka)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			admin.Close()
		}
	}()
	known, err := admin.Check(context.Background(), append(p.Topics(), p.TableTopics()...))
	if err == nil && p.ExactlyOnce() {
		err = admin.CheckTransactions(context.Background())
	}
	if err != nil {
		return nil, err
	}
	if err := ensureInternalTopics(p, admin, log); err != nil {
		return nil, err
	}
	rules := sinks.NewRules(known, func(topic string) (kafkaio.TopicRules, bool) {
		tr, ok := admin.Rules(context.Background(), topic)[topic]
		return tr, ok
	})
	conn, err := kafkaio.NewFranz(p.Kafka)
	if err != nil {
		return nil, err
	}
	run := &KafkaRun{p: p, admin: admin}
	var writer atleastonce.Writer
	switch {
	case p.ExactlyOnce():
		run.Source, writer, err = exactlyonce.Open(p.KafkaSource(), conn, transactionProducer(p), rules, log)
	case p.Kafka.Client == "sarama":
		var client *saramaio.Client
		if client, err = saramaio.New(p.Kafka); err == nil {
			run.Source, writer, err = atleastonce.Open(p.KafkaSource(), client, rules, log)
		}
	default:
		run.Source, writer, err = atleastonce.Open(p.KafkaSource(), conn, rules, log)
	}
	if err != nil {
		return nil, err
	}
	open := func(name string, sk sinks.Compiled, report sinks.Report) (sinks.Sink, error) {
		return sk.Open(sinks.Env{Name: name, Rules: rules, Log: log, Kafka: writer, Partitions: admin}, report)
	}
	if run.Engine, err = NewEngine(p, open, log); err != nil {
		return nil, err
	}
	run.Engine.UseState(StateOptions{Dir: filepath.Join(p.State.Dir, p.Name), CacheBytes: p.State.CacheBytes, Repartition: true,
		Changelog: func(topic string) state.Changelog { return admin.Changelog(topic) },
		Table:     func(topic string) state.TableTopic { return admin.TableTopic(topic) }})
	return run, nil
}

// ensureInternalTopics makes the changelog and repartition topics of the stateful stages that
// do not exist yet, with as many partitions as the source's first topic, and has the
// source's group read the repartition topics too.
func ensureInternalTopics(p *pipeline.Pipeline, admin *kafkaio.Admin, log *slog.Logger) error {
	stateful := p.Stateful()
	if len(stateful) == 0 {
		return nil
	}
	src := p.KafkaSource()
	n, err := admin.Partitions(context.Background(), src.Topics[0])
	if err != nil {
		return fmt.Errorf("the partitions of %s, for the stateful stages' topics: %w", src.Topics[0], err)
	}
	for _, st := range stateful {
		internal := []struct {
			topic, what string
			compact     bool
		}{{p.Changelog(st.Name), "changelog", true}, {p.Repartition(st), "repartition", false}}
		for _, t := range internal {
			if t.topic == "" {
				continue
			}
			created, err := admin.EnsureInternal(context.Background(), t.topic, n, t.compact)
			if err != nil {
				return fmt.Errorf("stage %s: %w", st.Name, err)
			}
			if created {
				log.Info("created a "+t.what+" topic", "stage", st.Name, "topic", t.topic, "partitions", n)
			}
		}
		if r := p.Repartition(st); r != "" && !slices.Contains(src.Topics, r) {
			src.Topics = append(src.Topics, r)
		}
	}
	return nil
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
	defer r.admin.Close()
	return r.Engine.Run(ctx, r.Source, r.p.Source.Impl.Drain())
}
