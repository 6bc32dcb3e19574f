// Package saramaio is sarama behind kafkaio's group and producer interfaces (`kafka.client:
// sarama`, at-least-once only): the client the project was specified with, kept so that one
// suite of behaviours runs against both and neither drifts. Its errors are handed on as
// franz-go's kerr carries Kafka's codes, so that the one failure table judges them.
package saramaio

import (
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	metrics "github.com/rcrowley/go-metrics"
	"github.com/xdg-go/scram"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

var disableMetrics sync.Once

// Config is the sarama configuration of the `kafka:` block's connection: version, client id,
// timeouts, TLS and SASL. The group and the producer add their own settings.
func Config(c *kafkaconn.Config) (*sarama.Config, error) {
	// sarama records go-metrics by default, and its registry grows without bound; the
	// engine measures what matters itself. This is a process-wide switch of go-metrics.
	disableMetrics.Do(func() { metrics.UseNilMetrics = true })

	sc := sarama.NewConfig()
	v, err := sarama.ParseKafkaVersion(c.Version)
	if err != nil {
		return nil, fmt.Errorf("kafka.version: %w", err)
	}
	sc.Version = v
	sc.ClientID = c.ClientID
	sc.Net.DialTimeout = c.ConnectTimeout
	sc.Metadata.Retry.Max = 2
	sc.Metadata.Timeout = c.ConnectTimeout
	sc.Metadata.AllowAutoTopicCreation = c.CreateOnWrite // false from a file: a topic a record names must exist
	if c.TLS != nil {
		tc, err := c.TLS.Config()
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if c.SASL != nil {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.User = c.SASL.Username
		sc.Net.SASL.Password = c.SASL.Password
		sc.Net.SASL.Handshake = true
		switch c.SASL.Mechanism {
		case "PLAIN":
			sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case "SCRAM-SHA-256":
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
		case "SCRAM-SHA-512":
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
		}
	}
	return sc, nil
}

// scramClient adapts xdg-go/scram to sarama's SCRAMClient.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (s *scramClient) Begin(user, password, authzID string) error {
	client, err := s.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	s.conv = client.NewConversation()
	return nil
}

func (s *scramClient) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *scramClient) Done() bool                            { return s.conv.Done() }
