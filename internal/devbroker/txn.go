package devbroker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceTxn writes recs to topic in one transaction of the transactional id txnID, each to
// its Partition, and commits it or aborts it; it returns once the transaction's markers are
// written (Stable), so that a read_committed reader sees its outcome. Tests make with it what
// an exactly-once pipeline leaves in its topics: the records of committed and of aborted
// transactions, and markers between and after them.
func (b *Broker) ProduceTxn(ctx context.Context, topic, txnID string, recs []Record, commit bool) error {
	cl, err := b.Client(kgo.TransactionalID(txnID), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning a transaction on %s: %w", topic, err)
	}
	krecs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krecs[i] = r.KgoRecord(topic)
	}
	if err := cl.ProduceSync(ctx, krecs...).FirstErr(); err != nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("producing to %s in a transaction: %w", topic, err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		return fmt.Errorf("ending a transaction on %s (commit %v): %w", topic, commit, err)
	}
	for deadline := time.Now().Add(30 * time.Second); !b.Stable(topic); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the markers of a transaction on %s were not written within 30s", topic)
		}
	}
	return nil
}

// ExactlyOnceDLQ fills topic (3 partitions) as the DLQ of an exactly-once pipeline reading
// source whose first transaction aborted: 5 records DeadLettered in an aborted transaction,
// the same 5 in a committed one, then one more in an aborted one. 11 records, 5 of them
// committed, and 7 markers: every partition ends with one.
func (b *Broker) ExactlyOnceDLQ(ctx context.Context, topic, source string) error {
	for _, txn := range []struct {
		recs   []Record
		commit bool
	}{{DeadLettered(5, source), false}, {DeadLettered(5, source), true}, {DeadLettered(1, source), false}} {
		if err := b.ProduceTxn(ctx, topic, "dlq-"+topic, txn.recs, txn.commit); err != nil {
			return err
		}
	}
	return nil
}

// CountUncommitted counts the records in topic as a read_uncommitted reader sees them, to
// its end: those of aborted transactions too, never the transactions' markers.
func (b *Broker) CountUncommitted(ctx context.Context, topic string) (n int, err error) {
	want, offsets := map[int32]int64{}, map[int32]kgo.Offset{}
	for p, end := range b.EndOffsets(topic) {
		if end > 0 {
			want[p], offsets[p] = end, kgo.NewOffset().AtStart()
		}
	}
	if len(want) == 0 {
		return 0, nil
	}
	cl, err := b.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.KeepControlRecords())
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("reading %s uncommitted: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				if !r.Attrs.IsControl() {
					n++
				}
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
	}
	return n, nil
}
