package kafkaio

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/failure"
)

// ProducerConfig is what a producer is made of: a sink's producer settings.
type ProducerConfig struct {
	Acks            string // all, leader or none
	Compression     string // none, gzip, snappy, lz4 or zstd
	Linger          time.Duration
	BatchBytes      int
	MaxMessageBytes int
	Idempotent      bool
	// BatchLimit is the largest batch a topic takes (its max.message.bytes); nil, or 0 for
	// a topic: MaxMessageBytes (or BatchBytes when larger).
	BatchLimit func(topic string) int
	// Retries is how often the client sends a refused write again by itself before it
	// answers with the refusal: then the sink's order guard holds the partition and probes.
	Retries int
	// Own asks for a producer of its own, shared with no other: the DLQ's, which closes last
	// and takes what the sinks fail as they close.
	Own bool
	// Topics are the topics the producer is for, when the file names them: sarama holds
	// every batch to the smallest of their limits (franz-go asks BatchLimit per topic).
	Topics []string
}

// Producer writes messages to the partitions they name, keeping each partition's order.
type Producer interface {
	// Produce hands m to the client; done gets its outcome once: nil when the broker
	// acknowledged it. It waits while the client's buffers are full; if ctx ends first, done
	// gets ctx's error. m is the client's until then.
	Produce(ctx context.Context, m *Message, done Done)
	// Close gives the outstanding writes until ctx ends to be answered, then fails those left
	// (done is told) and closes the connections.
	Close(ctx context.Context)
}

// Done is told how a write ended: nil when the broker acknowledged it. A writer that is its
// own Done spares an allocation per record on the hot path.
type Done interface {
	Produced(m *Message, err error)
}

// DoneFunc is a function as a Done.
type DoneFunc func(m *Message, err error)

func (f DoneFunc) Produced(m *Message, err error) { f(m, err) }

// minBatchBytes is the smallest batch limit franz-go takes.
const minBatchBytes = 512

// ProducerOpts are the franz-go options of cfg (the transactional session takes them too).
func ProducerOpts(cfg ProducerConfig) []kgo.Opt {
	codec := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}[cfg.Compression]
	batch := max(cfg.MaxMessageBytes, cfg.BatchBytes)
	opts := []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(cfg.Linger), kgo.ProducerBatchCompression(codec),
		kgo.ProducerBatchMaxBytesFn(func(topic string) int32 {
			limit := batch
			if cfg.BatchLimit != nil {
				if l := cfg.BatchLimit(topic); l > 0 && l < limit {
					limit = l
				}
			}
			return int32(max(limit, minBatchBytes))
		})}
	return opts
}

type franzProducer struct {
	cl *kgo.Client
}

// NewProducer returns a producer on franz-go with the connection conn.
func NewProducer(conn []kgo.Opt, cfg ProducerConfig) (Producer, error) {
	return newFranzProducer(conn, cfg)
}

func newFranzProducer(conn []kgo.Opt, cfg ProducerConfig) (*franzProducer, error) {
	acks := map[string]kgo.Acks{"all": kgo.AllISRAcks(), "leader": kgo.LeaderAck(), "none": kgo.NoAck()}[cfg.Acks]
	opts := append(slices.Clone(conn), ProducerOpts(cfg)...)
	opts = append(opts, kgo.RequiredAcks(acks), kgo.RetryBackoffFn(retryBackoff))
	if cfg.Retries > 0 {
		opts = append(opts, kgo.RecordRetries(cfg.Retries))
	}
	if !cfg.Idempotent || cfg.Acks != "all" {
		opts = append(opts, kgo.DisableIdempotentWrite()) // franz-go's idempotence needs acks all
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &franzProducer{cl: cl}, nil
}

// retryBackoff is the client's wait before sending a refused write again: 100 ms doubling,
// at most a second (failure.Backoff).
func retryBackoff(tries int) time.Duration {
	return failure.Backoff(tries, 100*time.Millisecond, time.Second, 2, 0)
}

func (p *franzProducer) Produce(ctx context.Context, m *Message, done Done) {
	r := &franzWrite{Context: ctx, msg: m, done: done}
	r.rec = kgo.Record{Topic: m.Topic, Partition: m.Partition, Timestamp: m.Timestamp, Key: m.Key, Value: m.Value,
		Headers: m.Headers, Context: r}
	p.cl.Produce(ctx, &r.rec, produced)
}

// franzWrite is a message as franz-go writes it, in one allocation with the way back to its
// writer: the record's context (which fails the record while buffered once it ends, as
// franz-go does with Produce's ctx) is the franzWrite itself, Produce's ctx with m and done.
type franzWrite struct {
	context.Context
	rec  kgo.Record
	msg  *Message
	done Done
}

// produced is franz-go's promise for every franzWrite.
func produced(r *kgo.Record, err error) {
	w := r.Context.(*franzWrite)
	w.done.Produced(w.msg, err)
}

// toFranz is m as franz-go writes it.
func toFranz(m *Message) *kgo.Record {
	return &kgo.Record{Topic: m.Topic, Partition: m.Partition, Timestamp: m.Timestamp, Key: m.Key, Value: m.Value, Headers: m.Headers}
}

func (p *franzProducer) Close(ctx context.Context) {
	_ = p.cl.Flush(ctx) // an error is ctx's: what is left is failed by the close
	p.cl.Close()
}
