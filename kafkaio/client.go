package kafkaio

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

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
// Producers of the same settings share one client: one connection per broker, and one batch
// per partition whatever sink the records come from.
type Franz struct {
	opts []kgo.Opt

	mu     sync.Mutex
	shared map[producerKey]*sharedProducer
}

// producerKey is what makes two producers the same (the topics' limits are the run's rules,
// the same for every sink).
type producerKey struct {
	acks, compression   string
	linger              time.Duration
	batch, max, retries int
	idempotent          bool
}

type sharedProducer struct {
	*franzProducer
	key  producerKey
	refs int
}

// producerRef is one holder's hold on a shared producer. The last to close flushes what is
// left, within its Close's ctx, and closes the client; the others only let go: a sink waits
// for its own writes before it closes its producer, and a flush here would wait for the other
// holders' too, a grace more for each sink that closes before the last.
type producerRef struct {
	*sharedProducer
	f    *Franz
	once sync.Once
}

func (r *producerRef) Close(ctx context.Context) {
	r.once.Do(func() {
		r.f.mu.Lock()
		r.refs--
		last := r.refs == 0
		if last {
			delete(r.f.shared, r.key)
		}
		r.f.mu.Unlock()
		if last {
			r.franzProducer.Close(ctx)
		}
	})
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

// Producer is a producer on franz-go, shared with the others of the same settings unless
// cfg.Own.
func (f *Franz) Producer(cfg ProducerConfig) (Producer, error) {
	if cfg.Own {
		return newFranzProducer(f.opts, cfg)
	}
	key := producerKey{acks: cfg.Acks, compression: cfg.Compression, linger: cfg.Linger, batch: cfg.BatchBytes,
		max: cfg.MaxMessageBytes, retries: cfg.Retries, idempotent: cfg.Idempotent}
	f.mu.Lock()
	defer f.mu.Unlock()
	if sp := f.shared[key]; sp != nil {
		sp.refs++
		return &producerRef{sharedProducer: sp, f: f}, nil
	}
	p, err := newFranzProducer(f.opts, cfg)
	if err != nil {
		return nil, err
	}
	if f.shared == nil {
		f.shared = map[producerKey]*sharedProducer{}
	}
	sp := &sharedProducer{franzProducer: p, key: key, refs: 1}
	f.shared[key] = sp
	return &producerRef{sharedProducer: sp, f: f}, nil
}

// TxnSession is the transactional session of exactly-once.
func (f *Franz) TxnSession(cfg TxnConfig, log *slog.Logger) (*TxnSession, error) {
	return NewTxnSession(f.opts, cfg, log)
}

// Opts are the connection's franz-go options.
func (f *Franz) Opts() []kgo.Opt { return slices.Clone(f.opts) }
