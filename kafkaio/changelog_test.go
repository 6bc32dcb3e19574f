package kafkaio

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

// A restore reads a changelog read_committed: neither a transaction its member aborted (a
// revoke) nor one a killed member left open, aborted when its successor takes the
// transactional id over, is applied, though the same producer id wrote committed ones around
// them and the restore's fetches (changelogFetch) are small enough to cut through them. (The
// in-process broker once left a partition's aborted transactions out of a fetch cut short by
// its max_bytes: see devkit's keepAbortedTransactions.)
func TestChangelogSkipsAbortedTransactions(t *testing.T) {
	b := startBroker(t, []kafkaconn.Topic{{Name: "cl", Partitions: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pad := strings.Repeat("x", 200)
	seq := 0
	member := func() *kgo.Client {
		cl, err := b.Client(kgo.TransactionalID("agg-m3"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	write := func(cl *kgo.Client, n int, tag string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for range n { // a batch a record: fetches of many small batches
			r := &kgo.Record{Topic: "cl", Key: fmt.Appendf(nil, "k%d", seq%50), Value: fmt.Appendf(nil, "%s-%d-%s", tag, seq, pad)}
			seq++
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := member()
	for i := range 8 {
		end, tag := kgo.TryCommit, "committed"
		if i == 3 {
			end, tag = kgo.TryAbort, "aborted"
		}
		write(first, 300, tag)
		if err := first.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	write(first, 900, "aborted") // and killed: the next member aborts it
	first.Close()
	second := member()
	defer second.Close()
	write(second, 300, "committed")
	if err := second.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	cl := newAdmin(t, &kafkaconn.Config{Brokers: b.Addrs()}).Changelog("cl")
	end, err := cl.End(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var committed, aborted int
	err = cl.Read(ctx, 0, 0, end, func(_, value []byte) error {
		if !strings.HasPrefix(string(value), "aborted") {
			committed++
		} else if aborted++; aborted <= 3 {
			t.Errorf("a record of an aborted transaction was restored: %.20s", value)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 7*300 + 300; committed != want || aborted != 0 {
		t.Errorf("restored %d records of committed transactions (want %d) and %d of aborted ones", committed, want, aborted)
	}
}
