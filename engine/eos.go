package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	if err := checkTransactions(p, conn); err != nil {
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

// checkTransactions asks the brokers whether they commit offsets in transactions with the
// group's generation (KIP-447, Kafka 2.5): without it a zombie member could commit.
func checkTransactions(p *pipeline.Pipeline, conn []kgo.Opt) error {
	cl, err := kgo.NewClient(conn...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), p.Kafka.ConnectTimeout)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("delivery: exactly_once: asking the brokers which requests they take: %w", err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == kmsg.TxnOffsetCommit.Int16() {
			if k.MaxVersion >= 3 {
				return nil
			}
			return fmt.Errorf("delivery: exactly_once needs brokers 2.5 or newer (KIP-447: offsets committed in a transaction with the group's generation); these answer TxnOffsetCommit up to version %d", k.MaxVersion)
		}
	}
	return fmt.Errorf("delivery: exactly_once needs brokers that take transactions; these do not answer TxnOffsetCommit")
}
