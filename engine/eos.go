package engine

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// checkTransactions asks the brokers whether they commit offsets in transactions with the
// group's generation (KIP-447, Kafka 2.5): without it a zombie member could commit.
func checkTransactions(p *pipeline.Pipeline, conn *kafkaio.Franz) error {
	cl, err := kgo.NewClient(conn.Opts()...)
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
