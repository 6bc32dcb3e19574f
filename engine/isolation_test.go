package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The source reads with read_committed isolation by default: records of an aborted
// transaction never reach the pipeline. read_uncommitted reads them all.
func TestKafkaIsolation(t *testing.T) {
	b := startBroker(t, 1, "events")
	cl, err := b.Client(kgo.TransactionalID("writer"), kgo.DefaultProduceTopic("events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	txn := func(from, to int, commit kgo.TransactionEndTry) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	txn(0, 100, kgo.TryCommit)
	txn(100, 200, kgo.TryAbort)
	txn(200, 300, kgo.TryCommit)

	for _, c := range []struct {
		isolation string
		want      int
	}{{"read_committed", 200}, {"read_uncommitted", 300}} {
		t.Run(c.isolation, func(t *testing.T) {
			p := mustParse(t, fmt.Sprintf(`version: 1
name: iso-%s
kafka: {brokers: %s}
source: {type: kafka, topics: [events], isolation: %s}
stages: [{name: d, type: decode}]
sinks: [{name: o, type: kafka, topic: out}]
`, c.isolation, strings.Join(b.Addrs(), ","), c.isolation))
			out := &MemorySinks{}
			e, err := NewEngine(p, out.Open, quiet)
			if err != nil {
				t.Fatal(err)
			}
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- e.Run(runCtx, newSource(t, p, quiet), 5*time.Second) }()
			// The last record of the log is n=299, after the aborted ones: once it is in, every
			// record before it was read or skipped.
			waitFor(t, 30*time.Second, "the last record", func() bool {
				recs := out.Records("o")
				return len(recs) > 0 && strings.Contains(string(recs[len(recs)-1].Value), `"n":299`)
			})
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got := out.Records("o")
			aborted := 0
			for _, r := range got {
				var n int
				fmt.Sscanf(string(r.Value), `{"n":%d}`, &n)
				if n >= 100 && n < 200 {
					aborted++
				}
			}
			if len(got) != c.want || (c.isolation == "read_committed" && aborted > 0) {
				t.Fatalf("%s: %d records, %d of the aborted transaction; want %d", c.isolation, len(got), aborted, c.want)
			}
		})
	}
}
