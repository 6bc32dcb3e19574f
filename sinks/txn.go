package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/txn"
)

// ErrAborted is the outcome of a write whose transaction was aborted: nothing of it is
// visible to read_committed readers, and its record is read again from the committed
// offsets. The engine counts the record as done in the aborted transaction, nothing more.
var ErrAborted = errors.New("its transaction was aborted: the record is read again")

// Txn writes records in the source's Kafka transaction (`delivery: exactly_once`): through
// the session's producer, into the transaction of the record's batch; a write of a
// transaction that is over is dropped. A refused write fails the transaction — it aborts,
// and its records are read again — as the failure table judges it: a passing fault is
// waited out that way; a refusal that is a record's own fault marks the records it failed
// as suspects, written alone next time, and a record refused alone is dead-lettered in the
// transaction, which commits; a stop stops the pipeline.
type Txn struct {
	*output
	sess   *txn.Session
	report Report
	faults faults

	mu      sync.Mutex
	pending int           // writes handed to the producer, not yet answered
	idle    chan struct{} // a token when pending reaches 0
}

// NewTxn opens a transactional sink on the session; lookups of topics use base.
func NewTxn(brokers []string, base *sarama.Config, p Producer, target Target, sess *txn.Session, rules *Rules, report Report, log *slog.Logger) (*Txn, error) {
	lookup, err := sarama.NewClient(brokers, base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sinkAt(target), err)
	}
	return &Txn{output: newOutput(p, target, lookup, rules, log), sess: sess, report: report, idle: make(chan struct{}, 1)}, nil
}

// Write hands each record to the producer in its transaction.
func (t *Txn) Write(ctx context.Context, recs []*record.Record) error {
	for _, rec := range recs {
		b, ok := rec.Track.Owner().(*txn.Batch)
		if !ok {
			return fmt.Errorf("%s: a record read outside a transaction reached an exactly-once sink", t.at) // an engine bug
		}
		if b.Ended() {
			t.report(rec, ErrAborted)
			continue
		}
		at := sourceOf(rec)
		guilty, suspect := t.faults.of(at)
		if guilty != nil {
			b.AfterCommit(func() { t.faults.forget(at) })
			t.report(rec, guilty)
			continue
		}
		msg, err := t.prepare(ctx, rec)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			t.report(rec, err)
			continue
		}
		if suspect {
			t.alone(rec, b, at, msg)
			continue
		}
		t.add(1)
		if !t.sess.Produce(b, franzRecord(msg), func(r *kgo.Record, err error) { t.answered(rec, b, at, r.Topic, err); t.add(-1) }) {
			t.add(-1)
			t.report(rec, ErrAborted)
		}
	}
	return nil
}

// answered is the producer's answer to a write of batch b to topic.
func (t *Txn) answered(rec *record.Record, b *txn.Batch, at source, topic string, err error) {
	switch {
	case b.Ended() || errors.Is(err, txn.ErrOver):
		t.report(rec, ErrAborted)
	case err != nil:
		f := failure.Judge(t.op, t.at, topic, err)
		if f.Outcome == failure.Stop {
			t.report(rec, f)
			return
		}
		if f.Outcome == failure.DeadLetter {
			// The broker refused the batch the record was in: which of its records is at
			// fault is told by writing each alone, after the transaction aborts.
			t.faults.suspect(at)
		}
		b.Fail(fmt.Errorf("%s: %w", t.at, err))
		t.report(rec, ErrAborted)
	default:
		t.report(rec, nil)
	}
}

// alone writes a suspect record as a batch of its own and waits for the answer: refused
// for its own reason again, it is dead-lettered in this transaction.
func (t *Txn) alone(rec *record.Record, b *txn.Batch, at source, msg *kafkaio.Message) {
	t.add(1)
	defer t.add(-1)
	err := t.sess.ProduceAlone(b, franzRecord(msg))
	if err == nil {
		t.faults.forget(at)
	}
	if err == nil || b.Ended() || errors.Is(err, txn.ErrOver) {
		t.answered(rec, b, at, msg.Topic, err)
		return
	}
	f := failure.Judge(t.op, t.at, msg.Topic, err)
	if f.Outcome != failure.DeadLetter {
		t.answered(rec, b, at, msg.Topic, err)
		return
	}
	t.faults.convict(at, f)
	b.AfterCommit(func() { t.faults.forget(at) })
	t.log.Warn("the broker refused a record written alone: dead-lettered", "stage", t.target.Name, "to_topic", msg.Topic,
		"err", err, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
	t.report(rec, f)
}

func (t *Txn) add(n int) {
	t.mu.Lock()
	t.pending += n
	if t.pending == 0 {
		select {
		case t.idle <- struct{}{}:
		default:
		}
	}
	t.mu.Unlock()
}

func (t *Txn) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending
}

// Close waits for the producer's answers to what was handed to it (the session's client,
// closed by the source before the sinks, fails what it still holds).
func (t *Txn) Close(ctx context.Context) error {
	defer t.lookup.Close()
	for t.outstanding() > 0 {
		select {
		case <-t.idle:
		case <-ctx.Done():
			return fmt.Errorf("%s: closed with %d writes unanswered: %w", t.at, t.outstanding(), ctx.Err())
		}
	}
	return nil
}

// franzRecord is msg as franz-go writes it.
func franzRecord(msg *kafkaio.Message) *kgo.Record {
	r := &kgo.Record{Topic: msg.Topic, Partition: msg.Partition, Timestamp: msg.Timestamp, Key: msg.Key, Value: msg.Value}
	if len(msg.Headers) > 0 {
		r.Headers = make([]kgo.RecordHeader, len(msg.Headers))
		for i, h := range msg.Headers {
			r.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return r
}

// TxnProducer is the producer settings of the session's client under exactly_once, from
// the first Kafka sink's (every sink writes through one producer): acks all and
// idempotence are what transactions are made of. A topic's batches are held to its
// max.message.bytes as rules know it (the sinks look a topic's rules up before they write
// to it, and franz-go asks for a topic's limit at its first write).
//
// txnRetryAge bounds how long a write the broker answered CONCURRENT_TRANSACTIONS waits:
// Kafka answers so while it still writes the previous transaction's markers, as it often
// does to the first writes of the next one; franz-go retries such a write after a metadata
// refresh, at most one every MetadataMinAge, 5s by default: a 5s stall of every write.
func TxnProducer(p Producer, rules *Rules) []kgo.Opt {
	codec := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}[p.Compression]
	return []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(p.Linger),
		kgo.ProducerBatchCompression(codec), kgo.ProducerBatchMaxBytesFn(func(topic string) int32 {
			return int32(max(rules.BatchLimit(topic, int(max(p.MaxMessageBytes, p.BatchBytes))), minBatchBytes))
		}),
		kgo.MetadataMinAge(txnRetryAge)}
}

const txnRetryAge = 250 * time.Millisecond

// minBatchBytes is the smallest batch limit franz-go takes.
const minBatchBytes = 512
