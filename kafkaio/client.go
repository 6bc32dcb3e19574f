package kafkaio

import (
	"log/slog"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

// Client makes the group members and producers of at-least-once: franz-go's (Franz) or
// sarama's (saramaio, `kafka.client: sarama`).
type Client interface {
	Group(cfg GroupConfig) (Group, error)
	Producer(cfg ProducerConfig) (Producer, error)
}

// Franz is the `kafka:` block's connection on franz-go, from which a run's clients are made.
type Franz struct {
	opts []kgo.Opt
}

// NewFranz reads the connection of c.
func NewFranz(c *kafkaconn.Config) (*Franz, error) {
	opts, err := Conn(c)
	if err != nil {
		return nil, err
	}
	return &Franz{opts: opts}, nil
}

// Group is a group member on franz-go.
func (f *Franz) Group(cfg GroupConfig) (Group, error) { return NewGroup(f.opts, cfg), nil }

// Producer is a producer on franz-go.
func (f *Franz) Producer(cfg ProducerConfig) (Producer, error) { return NewProducer(f.opts, cfg) }

// TxnSession is the transactional session of exactly-once.
func (f *Franz) TxnSession(cfg TxnConfig, log *slog.Logger) (*TxnSession, error) {
	return NewTxnSession(f.opts, cfg, log)
}

// Opts are the connection's franz-go options.
func (f *Franz) Opts() []kgo.Opt { return slices.Clone(f.opts) }
