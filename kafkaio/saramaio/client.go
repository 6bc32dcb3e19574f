package saramaio

import (
	"github.com/IBM/sarama"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// Client is kafkaio's Client on sarama.
type Client struct {
	brokers []string
	base    *sarama.Config
}

// New reads the connection of c.
func New(c *kafkaconn.Config) (*Client, error) {
	base, err := Config(c)
	if err != nil {
		return nil, err
	}
	return &Client{brokers: c.Brokers, base: base}, nil
}

// Group is a group member on sarama.
func (c *Client) Group(cfg kafkaio.GroupConfig) (kafkaio.Group, error) {
	return &group{brokers: c.brokers, sc: groupConfig(c.base, cfg), cfg: cfg}, nil
}

// Producer is a producer on sarama; its batches are held to the smallest limit of the topics
// cfg names.
func (c *Client) Producer(cfg kafkaio.ProducerConfig) (kafkaio.Producer, error) {
	return newProducer(c.brokers, producerConfig(c.base, cfg, cfg.Topics))
}
