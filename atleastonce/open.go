package atleastonce

import (
	"fmt"
	"log/slog"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// Writer opens the writer of a Kafka sink: the delivery mode's (sinks.Env.Kafka).
type Writer = func(out *sinks.Output, p sinks.Producer, report sinks.Report) (sinks.Sink, error)

// Open makes the source of c on client, and the writer of the run's Kafka sinks: each with a
// producer of its own settings, its topics' batches held to their rules.
func Open(c *sources.Config, client kafkaio.Client, rules *sinks.Rules, log *slog.Logger) (*Source, Writer, error) {
	group, err := client.Group(c.GroupConfig())
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	open := func(out *sinks.Output, p sinks.Producer, report sinks.Report) (sinks.Sink, error) {
		cfg := p.Client(rules, ClientRetries)
		cfg.Own = out.Target.DLQ
		if out.Target.Topic != "" {
			cfg.Topics = []string{out.Target.Topic}
		}
		prod, err := client.Producer(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", out.At, err)
		}
		return NewSink(out, prod, report), nil
	}
	return NewSource(c, group, log), open, nil
}
