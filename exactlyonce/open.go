package exactlyonce

import (
	"log/slog"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// Open makes the source of c, whose transactions' producer is tuned by p (the first Kafka
// sink's settings: every sink writes through it), and the writer of the run's Kafka sinks:
// into the source's transactions.
func Open(c *sources.Config, conn *kafkaio.Franz, p sinks.Producer, rules *sinks.Rules, log *slog.Logger) (*Source, func(*sinks.Output, sinks.Producer, sinks.Report) (sinks.Sink, error), error) {
	src, err := NewSource(c, conn, p.Client(rules, 0), log)
	if err != nil {
		return nil, nil, err
	}
	open := func(out *sinks.Output, _ sinks.Producer, report sinks.Report) (sinks.Sink, error) {
		return NewSink(out, src.Session(), report), nil
	}
	return src, open, nil
}
