package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// Target is what a Kafka sink writes: a topic (or an expression computing it, with the
// patterns it must match), the key (an expression, or the record's key) and the body
// encoding. The DLQ truncates a record too large for it rather than refuse it.
type Target struct {
	Name      string
	Topic     string
	TopicExpr *expr.Program
	Allow     []string
	Key       *expr.Program
	Encode    string
	Schema    *SchemaEncoder // encode avro, protobuf
	DLQ       bool
}

// producerRetries is how often sarama retries a refused write by itself before the sink's
// order guard takes over. Once: sarama keeps a partition's later writes behind a retried one
// only while it retries; when it gives up, they go ahead. The guard holds them back instead,
// so the sooner it takes over, the fewer writes pass a refused one.
const (
	producerRetries    = 1
	producerBackoffMax = time.Second
	// closeGrace is how long Close lets the producer finish once the sink's wait is over,
	// before it cuts the connections (and again after).
	closeGrace = 3 * time.Second
	// patientMetadata bounds the producer's metadata lookups.
	patientMetadata = 30 * time.Second
)

// logEvery is how often a sink whose writes are refused says so.
const logEvery = 10 * time.Second

// Kafka writes records to Kafka through sarama's async producer, keeping the order of each
// output partition through refused writes (see the order guard).
type Kafka struct {
	*output
	client sarama.Client
	prod   sarama.AsyncProducer
	report Report
	guard  *guard

	quit    chan struct{} // closed by Close: the resender stops
	readers conc.WaitGroup
	loop    conc.WaitGroup
}

// ProducerConfig adds a sink's producer settings to the connection's sarama config; maxBytes
// is the largest record the sink writes.
func ProducerConfig(base *sarama.Config, p Producer, maxBytes int) *sarama.Config {
	c := *base
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.RequiredAcks = map[string]sarama.RequiredAcks{"all": sarama.WaitForAll, "leader": sarama.WaitForLocal, "none": sarama.NoResponse}[p.Acks]
	c.Producer.Compression = map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}[p.Compression]
	c.Producer.Flush.Frequency = p.Linger
	c.Producer.Flush.Bytes = int(p.BatchBytes)
	c.Producer.MaxMessageBytes = maxBytes
	c.Producer.Partitioner = sarama.NewManualPartitioner // the sink picks partitions: it keeps order per partition
	c.Producer.Retry.Max = producerRetries
	c.Producer.Retry.BackoffFunc = cappedBackoff
	c.Producer.Idempotent = p.Idempotent
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

// NewKafka starts a producer for target, whose topics' rules are in rules; report receives
// every outcome.
func NewKafka(brokers []string, base *sarama.Config, p Producer, target Target, rules *Rules, report Report, log *slog.Logger) (*Kafka, error) {
	lookup, err := sarama.NewClient(brokers, base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sinkAt(target), err)
	}
	out := newOutput(p, target, lookup, rules, log)
	tr, _ := rules.Of(target.Topic) // "" for a computed topic: sarama has one batch limit for all
	client, err := sarama.NewClient(brokers, ProducerConfig(base, p, out.limit(tr)))
	if err != nil {
		lookup.Close()
		return nil, fmt.Errorf("%s: %w", out.at, err)
	}
	prod, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		client.Close()
		lookup.Close()
		return nil, fmt.Errorf("%s: %w", out.at, err)
	}
	k := &Kafka{output: out, client: client, prod: prod, report: report, guard: newGuard(!target.DLQ), quit: make(chan struct{})}
	k.readers.Go(k.readSuccesses)
	k.readers.Go(k.readErrors)
	k.loop.Go(k.resend)
	return k, nil
}

// Write queues records; it blocks while the producer's buffers are full (backpressure), or
// while a computed topic cannot be looked up.
func (k *Kafka) Write(ctx context.Context, recs []*record.Record) error {
	for _, rec := range recs {
		w, err := k.prepare(ctx, rec)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			k.report(rec, err)
			continue
		}
		if !k.guard.add(w, partKey{w.msg.Topic, w.msg.Partition}) {
			continue // its partition is held: it follows the writes refused before it
		}
		select {
		case k.prod.Input() <- w.msg:
		case <-ctx.Done():
			k.guard.unsent(w)
			return ctx.Err()
		}
	}
	return nil
}

func (k *Kafka) readSuccesses() {
	for msg := range k.prod.Successes() {
		for _, w := range k.guard.acked(msg.Metadata.(*write)) {
			k.report(w.rec, nil)
		}
	}
}

func (k *Kafka) readErrors() {
	for perr := range k.prod.Errors() {
		w := perr.Msg.Metadata.(*write)
		f := failure.Judge(k.op, k.at, perr.Msg.Topic, perr.Err)
		if f.Outcome == failure.Wait {
			k.guard.refused(w, perr.Err, k.backoff)
			continue
		}
		settled := k.guard.gone(w)
		k.report(w.rec, f)
		for _, s := range settled {
			k.report(s.rec, nil)
		}
	}
}

// prepare builds the write of rec (see output.prepare).
func (k *Kafka) prepare(ctx context.Context, rec *record.Record) (*write, error) {
	msg, err := k.output.prepare(ctx, rec)
	if err != nil {
		return nil, err
	}
	w := &write{rec: rec, msg: saramaMessage(msg)}
	w.msg.Metadata = w
	return w, nil
}

// resend hands the writes the order guard releases to the producer, and says every logEvery
// when the broker refuses this sink's writes. It ends when Close closes quit.
func (k *Kafka) resend() {
	tick := time.NewTicker(logEvery)
	defer tick.Stop()
	var timer *time.Timer
	var timerC <-chan time.Time
	var said refusalLog
	for {
		send, releasing, next := k.guard.due(time.Now())
		for len(send) > 0 {
			for _, w := range send {
				select {
				case k.prod.Input() <- w.msg:
				case <-k.quit:
					return
				}
			}
			send, releasing = k.guard.released(releasing)
		}
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			timerC = timer.C
		}
		select {
		case <-k.guard.wake:
		case <-timerC:
		case <-tick.C:
			k.sayRefused(&said)
		case <-k.quit:
			return
		}
	}
}

// refusalLog is what the refusal lines have said so far.
type refusalLog struct {
	refusals int64 // counted in the lines so far
	open     bool  // the last line said the broker refuses writes
}

// sayRefused logs, once per interval, that the broker refuses writes, with counts and the
// last error; and once that it takes them again.
func (k *Kafka) sayRefused(said *refusalLog) {
	s := k.guard.status()
	switch {
	case s.refusals > said.refusals:
		k.log.Warn("the broker refuses writes: they wait and are written again in order; nothing is dead-lettered",
			"stage", k.target.Name, "refused", s.refusals-said.refusals, "waiting", s.unsettled, "held", strings.Join(s.held, ","),
			"rewritten", s.rewritten, "last_err", s.lastErr)
		said.refusals, said.open = s.refusals, true
	case said.open && len(s.held) == 0:
		k.log.Info("the broker takes writes again", "stage", k.target.Name, "refused", s.refusals, "rewritten", s.rewritten)
		said.open = false
	}
}

// Counters are the sink's own numbers: writes refused for a passing reason (each written again
// later), and writes written twice to keep their partition in order.
func (k *Kafka) Counters() map[string]int64 {
	s := k.guard.status()
	return map[string]int64{"refused": s.refusals, "rewritten": s.rewritten}
}

// Close waits until every written record is settled, or ctx ends; then it stops the
// producer. Records not acknowledged by then are not reported: they will be read again.
func (k *Kafka) Close(ctx context.Context) error {
	var err error
	for {
		n := k.guard.unsettledCount()
		if n == 0 {
			break
		}
		select {
		case <-k.guard.settled:
			continue
		case <-ctx.Done():
			err = fmt.Errorf("%s: closed with %d records not acknowledged: %w", k.at, n, ctx.Err())
		}
		break
	}
	close(k.quit)
	k.loop.Wait()
	if s := k.guard.status(); s.refusals > 0 {
		k.log.Info("closing: writes the broker refused on the way", "stage", k.target.Name, "refused", s.refusals,
			"rewritten", s.rewritten, "not_acknowledged", s.unsettled, "last_err", s.lastErr)
	}
	k.prod.AsyncClose() // nothing sends to the producer any more
	stopped := make(chan struct{})
	go func() { k.readers.Wait(); close(stopped) }() // ends with the producer
	if !within(stopped, closeGrace) {
		// Writes the broker still refuses keep the producer retrying: cutting its connections
		// fails them at once.
		go k.client.Close() // may wait for a metadata lookup under way
		if !within(stopped, closeGrace+patientMetadata) {
			k.log.Error("the producer did not stop; giving up on it", "stage", k.target.Name)
			return errors.Join(err, fmt.Errorf("%s: the producer did not stop", k.at))
		}
	}
	if !k.client.Closed() {
		k.client.Close()
	}
	k.lookup.Close()
	return err
}

// saramaMessage is m as sarama writes it.
func saramaMessage(m *kafkaio.Message) *sarama.ProducerMessage {
	msg := &sarama.ProducerMessage{Topic: m.Topic, Partition: m.Partition, Timestamp: m.Timestamp}
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
	return msg
}

// within reports whether done closes within d.
func within(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// TooLargeError is a record larger than its topic takes.
type TooLargeError struct {
	Topic        string
	Bytes, Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the record is %d bytes, more than the %d topic %s takes (max_message_bytes, or the topic's max.message.bytes)", e.Bytes, e.Limit, e.Topic)
}

// RecordFault marks the error as its record's fault.
func (*TooLargeError) RecordFault() {}

// EncodeError is a record whose output could not be computed (key, topic or body).
type EncodeError struct {
	What string
	Err  error
}

func (e *EncodeError) Error() string { return fmt.Sprintf("computing the %s: %v", e.What, e.Err) }
func (e *EncodeError) Unwrap() error { return e.Err }

// RecordFault marks the error as its record's fault.
func (*EncodeError) RecordFault() {}
