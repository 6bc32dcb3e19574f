package saramaio

import (
	"errors"
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/pythia-pipe/pythia-pipe/failure"
)

// sarama's errors reach the failure table as Kafka's codes, judged as franz-go's are.
func TestKafkaErr(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want failure.Outcome
		is   error
	}{
		{"a Kafka code", sarama.ErrNotEnoughReplicas, failure.Wait, kerr.NotEnoughReplicas},
		{"a wrapped Kafka code", fmt.Errorf("producing: %w", sarama.ErrMessageSizeTooLarge), failure.DeadLetter, kerr.MessageTooLarge},
		{"sarama's own size check", sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes: 2 > 1"), failure.DeadLetter, kerr.MessageTooLarge},
		{"a setting sarama refuses", sarama.ConfigurationError("Net.MaxOpenRequests must be > 0"), failure.Stop, nil},
		{"no broker left", sarama.ErrOutOfBrokers, failure.Wait, sarama.ErrOutOfBrokers},
		{"a fenced static member", sarama.ErrFencedInstancedId, failure.Stop, kerr.FencedInstanceID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := kafkaErr(c.err)
			if got := failure.Judge(failure.Produce, "sink out", "t", err).Outcome; got != c.want {
				t.Errorf("judged %v, want %v", got, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("%v is not %v", err, c.is)
			}
		})
	}
}
