package engine

import (
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// openExactlyOnce makes the source of `delivery: exactly_once`: one franz-go client that is
// the group member and the transactional producer every Kafka sink writes through.
func openExactlyOnce(p *pipeline.Pipeline, rules *sinks.Rules, log *slog.Logger) (*sources.KafkaEOS, error) {
	conn, err := kafkaio.Conn(p.Kafka)
	if err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt(nil), conn...)
	for _, sk := range p.SinksAndDLQ() {
		if k, ok := sk.Impl.(*sinks.KafkaSink); ok { // the first: validate warns when the others differ
			opts = append(opts, sinks.TxnProducer(k.Producer, rules)...)
			break
		}
	}
	return sources.NewKafkaEOS(p.KafkaSource(), opts, log)
}
