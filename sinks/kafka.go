package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// Target is what a Kafka sink writes: a topic (or an expression computing it), the key
// (an expression, or the record's key) and the body encoding.
type Target struct {
	Name      string
	Topic     string
	TopicExpr *expr.Program
	Key       *expr.Program
	Encode    string
}

// Report receives the final outcome of every record written to a sink, exactly once: nil
// when the broker acknowledged it, a *RecordError or a *FatalError otherwise.
type Report func(rec *record.Record, err error)

// Kafka writes records to Kafka through sarama's async producer. Retryable failures are
// retried with exponential backoff until the record is written or the sink is closed;
// only final outcomes reach Report.
type Kafka struct {
	target Target
	env    *expr.Binder // for topic_expr and key
	prod   sarama.AsyncProducer
	report Report
	log    *slog.Logger

	inflight sync.WaitGroup // written, outcome not reported yet
	quit     chan struct{}  // closed by Close: no more retries
	readers  conc.WaitGroup // the Successes and Errors readers
	resend   chan *sarama.ProducerMessage
	resent   chan struct{} // closed when the resender has stopped

	mu      sync.Mutex
	timers  map[*time.Timer]*sarama.ProducerMessage // retries waiting for their backoff
	waiting sync.WaitGroup                          // timer functions not finished
}

// pending travels with a message through the producer.
type pending struct {
	rec      *record.Record
	attempts int
}

// ProducerConfig adds a sink's producer settings to the connection's sarama config.
func ProducerConfig(base *sarama.Config, p Producer) *sarama.Config {
	c := *base
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.RequiredAcks = map[string]sarama.RequiredAcks{"all": sarama.WaitForAll, "leader": sarama.WaitForLocal, "none": sarama.NoResponse}[p.Acks]
	c.Producer.Compression = map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}[p.Compression]
	c.Producer.Flush.Frequency = p.Linger
	c.Producer.Flush.Bytes = int(p.BatchBytes)
	c.Producer.MaxMessageBytes = int(p.MaxMessageBytes)
	c.Producer.Retry.Max = 3
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	if p.Idempotent {
		c.Producer.Idempotent = true
		c.Net.MaxOpenRequests = 1
	}
	return &c
}

// NewKafka starts a producer for target; report receives every outcome.
func NewKafka(brokers []string, cfg *sarama.Config, target Target, report Report, log *slog.Logger) (*Kafka, error) {
	prod, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", target.Name, err)
	}
	k := &Kafka{target: target, env: expr.NewBinder(target.TopicExpr, target.Key), prod: prod, report: report, log: log.With("sink", target.Name),
		quit: make(chan struct{}), resend: make(chan *sarama.ProducerMessage), resent: make(chan struct{}),
		timers: map[*time.Timer]*sarama.ProducerMessage{}}
	k.readers.Go(k.readSuccesses)
	k.readers.Go(k.readErrors)
	go k.resender() // stopped by Close through quit; Close waits for resent
	return k, nil
}

// Write queues records; it blocks while the producer's buffers are full (backpressure).
func (k *Kafka) Write(ctx context.Context, recs []*record.Record) error {
	for _, rec := range recs {
		msg, err := k.message(rec)
		if err != nil {
			k.report(rec, &RecordError{Sink: k.target.Name, Err: err})
			continue
		}
		msg.Metadata = &pending{rec: rec, attempts: 1}
		k.inflight.Add(1)
		select {
		case k.prod.Input() <- msg:
		case <-ctx.Done():
			k.inflight.Done()
			return ctx.Err()
		}
	}
	return nil
}

func (k *Kafka) message(rec *record.Record) (*sarama.ProducerMessage, error) {
	topic, key, err := k.route(rec)
	if err != nil {
		return nil, err
	}
	value, err := Encode(rec, k.target.Encode)
	if err != nil {
		return nil, err
	}
	msg := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(value), Timestamp: rec.Timestamp}
	if key != nil {
		msg.Key = sarama.ByteEncoder(key)
	}
	if len(rec.Headers) > 0 {
		msg.Headers = make([]sarama.RecordHeader, len(rec.Headers))
		for i, h := range rec.Headers {
			msg.Headers[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
		}
	}
	return msg, nil
}

// route evaluates topic_expr and key for rec; each left out keeps the sink's topic or the
// record's key.
func (k *Kafka) route(rec *record.Record) (topic string, key []byte, err error) {
	topic, key = k.target.Topic, rec.Key
	if k.target.TopicExpr == nil && k.target.Key == nil {
		return topic, key, nil
	}
	vars := k.env.Bind(rec)
	defer k.env.Release(vars)
	if k.target.TopicExpr != nil {
		v, err := k.target.TopicExpr.Run(vars)
		if err != nil {
			return "", nil, &EncodeError{What: "topic", Err: err}
		}
		s, ok := v.(string)
		if !ok || s == "" {
			return "", nil, &EncodeError{What: "topic", Err: fmt.Errorf("topic_expr computed %v, not a topic name", v)}
		}
		topic = s
	}
	if k.target.Key != nil {
		v, err := k.target.Key.Run(vars)
		if err != nil {
			return "", nil, &EncodeError{What: "key", Err: err}
		}
		key = record.ToBytes(v)
	}
	return topic, key, nil
}

func (k *Kafka) readSuccesses() {
	for msg := range k.prod.Successes() {
		k.report(msg.Metadata.(*pending).rec, nil)
		k.inflight.Done()
	}
}

func (k *Kafka) readErrors() {
	for perr := range k.prod.Errors() {
		p := perr.Msg.Metadata.(*pending)
		switch Classify(perr.Err) {
		case Retryable:
			if k.retry(perr.Msg, p, perr.Err) {
				continue
			}
			k.report(p.rec, &FatalError{Sink: k.target.Name, Topic: perr.Msg.Topic, Err: fmt.Errorf("given up at shutdown: %w", perr.Err)})
		case RecordFailure:
			k.report(p.rec, &RecordError{Sink: k.target.Name, Err: perr.Err})
		default:
			k.report(p.rec, &FatalError{Sink: k.target.Name, Topic: perr.Msg.Topic, Err: perr.Err})
		}
		k.inflight.Done()
	}
}

// retry schedules the message again after a backoff, unless the sink is closing.
func (k *Kafka) retry(old *sarama.ProducerMessage, p *pending, cause error) bool {
	select {
	case <-k.quit:
		return false
	default:
	}
	wait := Backoff(p.attempts, 100*time.Millisecond, 5*time.Second)
	p.attempts++
	if p.attempts == 2 || p.attempts%10 == 0 {
		k.log.Warn("write failed, retrying", "stage", k.target.Name, "to_topic", old.Topic, "attempt", p.attempts,
			"in", wait.Round(time.Millisecond), "err", cause, "topic", p.rec.Topic, "partition", p.rec.Partition, "offset", p.rec.Offset)
	}
	msg := &sarama.ProducerMessage{Topic: old.Topic, Key: old.Key, Value: old.Value, Headers: old.Headers, Timestamp: old.Timestamp, Metadata: p}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.waiting.Add(1)
	var t *time.Timer
	t = time.AfterFunc(wait, func() {
		defer k.waiting.Done()
		k.mu.Lock()
		delete(k.timers, t)
		k.mu.Unlock()
		select {
		case k.resend <- msg:
		case <-k.quit:
			k.giveUp(msg)
		}
	})
	k.timers[t] = msg
	return true
}

// resender owns the retries' way into the producer, so that nothing is sent once Close
// has begun closing it.
func (k *Kafka) resender() {
	defer close(k.resent)
	for {
		select {
		case msg := <-k.resend:
			select {
			case k.prod.Input() <- msg:
			case <-k.quit:
				k.giveUp(msg)
			}
		case <-k.quit:
			return
		}
	}
}

func (k *Kafka) giveUp(msg *sarama.ProducerMessage) {
	k.report(msg.Metadata.(*pending).rec, &FatalError{Sink: k.target.Name, Topic: msg.Topic, Err: errors.New("not written before shutdown")})
	k.inflight.Done()
}

// Close waits until every written record has its outcome, or ctx ends; then it gives up
// the pending retries (reported as not written) and closes the producer.
func (k *Kafka) Close(ctx context.Context) error {
	idle := make(chan struct{})
	go func() { k.inflight.Wait(); close(idle) }()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = fmt.Errorf("sink %s: closed with records not acknowledged: %w", k.target.Name, ctx.Err())
	}
	close(k.quit)
	k.mu.Lock()
	for t, msg := range k.timers {
		if t.Stop() {
			k.waiting.Done()
			k.giveUp(msg)
		}
		delete(k.timers, t)
	}
	k.mu.Unlock()
	k.waiting.Wait()
	<-k.resent
	k.prod.AsyncClose() // nothing sends to the producer any more
	k.readers.Wait()
	<-idle
	return err
}

// Backoff is the wait before attempt+1: initial·2^(attempt-1), at most max, with ±20% jitter.
func Backoff(attempt int, initial, max time.Duration) time.Duration {
	d := initial
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64())) // #nosec G404 -- jitter, not security
}
