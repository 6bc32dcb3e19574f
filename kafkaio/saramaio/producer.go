package saramaio

import (
	"context"
	"errors"
	"time"

	"github.com/IBM/sarama"
	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// producer is kafkaio's Producer on sarama's async producer.
type producer struct {
	client  sarama.Client
	prod    sarama.AsyncProducer
	readers conc.WaitGroup
	stopped chan struct{} // closed when both answer channels are
}

const (
	producerBackoffMax = time.Second
	// patientMetadata bounds the producer's metadata lookups.
	patientMetadata = 30 * time.Second
)

// pending is a message on its way: what its answer goes to.
type pending struct {
	m    *kafkaio.Message
	done kafkaio.Done
}

// producerConfig adds cfg's producer settings to the connection's sarama config. sarama has
// one batch limit for every topic: the smallest of those of the topics named.
func producerConfig(base *sarama.Config, cfg kafkaio.ProducerConfig, topics []string) *sarama.Config {
	c := *base
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.RequiredAcks = map[string]sarama.RequiredAcks{"all": sarama.WaitForAll, "leader": sarama.WaitForLocal, "none": sarama.NoResponse}[cfg.Acks]
	c.Producer.Compression = map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}[cfg.Compression]
	c.Producer.Flush.Frequency = cfg.Linger
	c.Producer.Flush.Bytes = cfg.BatchBytes
	limit := cfg.MaxMessageBytes
	for _, t := range topics {
		if cfg.BatchLimit != nil {
			if l := cfg.BatchLimit(t); l > 0 && l < limit {
				limit = l
			}
		}
	}
	c.Producer.MaxMessageBytes = limit
	c.Producer.Partitioner = sarama.NewManualPartitioner // the sink picks partitions: it keeps order per partition
	c.Producer.Retry.Max = cfg.Retries
	c.Producer.Retry.BackoffFunc = cappedBackoff
	c.Producer.Idempotent = cfg.Idempotent
	c.Net.MaxOpenRequests = 1 // one request in flight per broker: a retry cannot pass a later write
	// While a partition's leader is unknown (a broker restarting), sarama fails the writes that
	// need it at once, and a later write of the partition can get through before the failed
	// ones are sent again. Patient metadata lookups keep those writes waiting inside sarama,
	// in order, instead.
	c.Metadata.Retry.Max = 30
	c.Metadata.Retry.BackoffFunc = cappedBackoff
	c.Metadata.Timeout = patientMetadata
	return &c
}

// cappedBackoff is sarama's wait before a retry: 100 ms doubling, at most a second.
func cappedBackoff(retries, _ int) time.Duration {
	return failure.Backoff(retries+1, 100*time.Millisecond, producerBackoffMax, 2, 0)
}

func newProducer(brokers []string, sc *sarama.Config) (*producer, error) {
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return nil, kafkaErr(err)
	}
	prod, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		client.Close()
		return nil, kafkaErr(err)
	}
	p := &producer{client: client, prod: prod, stopped: make(chan struct{})}
	p.readers.Go(func() {
		for msg := range prod.Successes() {
			w := msg.Metadata.(*pending)
			w.done.Produced(w.m, nil)
		}
	})
	p.readers.Go(func() {
		for perr := range prod.Errors() {
			w := perr.Msg.Metadata.(*pending)
			w.done.Produced(w.m, kafkaErr(perr.Err))
		}
	})
	go func() { p.readers.Wait(); close(p.stopped) }()
	return p, nil
}

func (p *producer) Produce(ctx context.Context, m *kafkaio.Message, done kafkaio.Done) {
	msg := &sarama.ProducerMessage{Topic: m.Topic, Partition: m.Partition, Timestamp: m.Timestamp, Metadata: &pending{m: m, done: done}}
	if m.Value != nil {
		msg.Value = sarama.ByteEncoder(m.Value)
	}
	if m.Key != nil {
		msg.Key = sarama.ByteEncoder(m.Key)
	}
	if len(m.Headers) > 0 {
		msg.Headers = make([]sarama.RecordHeader, len(m.Headers))
		for i, h := range m.Headers {
			msg.Headers[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
		}
	}
	select {
	case p.prod.Input() <- msg:
	case <-ctx.Done():
		done.Produced(m, ctx.Err())
	}
}

// Close lets the producer answer what it holds until ctx ends; writes the broker still
// refuses keep it retrying then, and cutting its connections fails them at once.
func (p *producer) Close(ctx context.Context) {
	p.prod.AsyncClose()
	select {
	case <-p.stopped:
	case <-ctx.Done():
		go p.client.Close() // may wait for a metadata lookup under way
		select {
		case <-p.stopped:
		case <-time.After(patientMetadata):
			return // sarama did not stop: given up on
		}
	}
	if !p.client.Closed() {
		if err := p.client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
			return
		}
	}
}
