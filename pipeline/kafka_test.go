package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orderFeed makes n records of the orders example: every 10th bad JSON, every 10th filtered
// out (amount <= 0), every 10th big (amount >= 1000), the rest for `out`.
func orderFeed(n int) []devbroker.Record {
	recs := make([]devbroker.Record, n)
	for i := range recs {
		var body string
		switch i % 10 {
		case 0:
			body = fmt.Sprintf(`{"order_id": "o%d", "amount": }`, i)
		case 1:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"c%d","amount":0,"region":"eu"}`, i, i%97)
		case 2:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"c%d","amount":1500.5,"region":"us"}`, i, i%97)
		default:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"c%d","amount":%d.5,"region":"eu","note":"n%d"}`, i, i%97, i%999, i)
		}
		recs[i] = devbroker.Record{Key: []byte(fmt.Sprintf("c%d", i%97)), Value: []byte(body),
			Headers: map[string]string{"seq": fmt.Sprint(i)}, Timestamp: time.UnixMilli(1700000000000 + int64(i))}
	}
	return recs
}

func startOrdersBroker(t *testing.T, partitions int32) *devbroker.Broker {
	t.Helper()
	b, err := devbroker.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	for _, topic := range []string{"orders", "orders-out", "orders-big", "orders-dlq"} {
		if err := b.CreateTopic(topic, partitions); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func loadOrders(t *testing.T, b *devbroker.Broker) *Pipeline {
	t.Helper()
	src, err := os.ReadFile("../pipelines/orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		if k == "KAFKA_BROKERS" {
			return strings.Join(b.Addrs(), ","), true
		}
		return "", false
	}
	p, diags := Parse("orders.yaml", src, Options{Env: env, BaseDir: ".."})
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	p.Source.CommitInterval = 100 * time.Millisecond
	return p
}

// Test 1 of the run issue: 100,000 records through the orders example on the in-process broker.
func TestKafkaOrders100k(t *testing.T) {
	const n = 100_000
	b := startOrdersBroker(t, 3)
	feed := orderFeed(n)
	ctx := context.Background()
	if err := b.Produce(ctx, "orders", feed); err != nil {
		t.Fatal(err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	p := loadOrders(t, b)
	run, err := ConnectKafka(p, quiet)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run.Run(runCtx) }()
	waitFor(t, 120*time.Second, "the group to commit the end of orders", func() bool { return b.CaughtUp("order-processors", "orders") })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	readCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	outs, err := b.Read(readCtx, "orders-out")
	if err != nil {
		t.Fatal(err)
	}
	bigs, err := b.Read(readCtx, "orders-big")
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := b.Read(readCtx, "orders-dlq")
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 7*n/10 || len(bigs) != n/10 || len(dlq) != n/10 {
		t.Fatalf("out %d big %d dlq %d; want %d %d %d", len(outs), len(bigs), len(dlq), 7*n/10, n/10, n/10)
	}
	seen := map[int]bool{}
	check := func(r devbroker.Record, sink string) {
		seq := 0
		fmt.Sscan(r.Headers["seq"], &seq)
		if seen[seq] {
			t.Fatalf("record %d written twice", seq)
		}
		seen[seq] = true
		in := feed[seq]
		if string(r.Key) != string(in.Key) || !r.Timestamp.Equal(in.Timestamp) {
			t.Fatalf("%s: record %d key %q ts %v; want %q %v", sink, seq, r.Key, r.Timestamp, in.Key, in.Timestamp)
		}
		if sink == "dlq" {
			if string(r.Value) != string(in.Value) {
				t.Fatalf("dlq: record %d is not the original bytes: %s", seq, r.Value)
			}
			for h, want := range map[string]string{"pythia.stage": "parse", "pythia.pipeline": "orders", "pythia.source.topic": "orders", "pythia.attempts": "1"} {
				if r.Headers[h] != want {
					t.Fatalf("dlq: record %d header %s = %q, want %q", seq, h, r.Headers[h], want)
				}
			}
			for _, h := range []string{"pythia.error", "pythia.source.partition", "pythia.source.offset", "pythia.source.timestamp", "pythia.failed_at"} {
				if r.Headers[h] == "" {
					t.Fatalf("dlq: record %d lacks header %s", seq, h)
				}
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(r.Value, &m); err != nil {
			t.Fatalf("%s: record %d is not JSON: %v", sink, seq, err)
		}
		var orig map[string]any
		_ = json.Unmarshal(in.Value, &orig)
		amount := orig["amount"].(float64)
		if (sink == "big") != (amount >= 1000) || m["region"] != strings.ToUpper(orig["region"].(string)) ||
			m["total_cents"] != float64(int64(amount*100+0.5)) || m["order_id"] != orig["order_id"] {
			t.Fatalf("%s: record %d = %v from %v", sink, seq, m, orig)
		}
	}
	for _, r := range outs {
		check(r, "out")
	}
	for _, r := range bigs {
		check(r, "big")
	}
	for _, r := range dlq {
		check(r, "dlq")
	}
	for i := range feed {
		if i%10 == 1 && seen[i] {
			t.Fatalf("filtered record %d was written", i)
		}
		if i%10 != 1 && !seen[i] {
			t.Fatalf("record %d is missing", i)
		}
	}
	committed, ends := b.Committed("order-processors", "orders"), b.EndOffsets("orders")
	for part, end := range ends {
		if committed[part] != end {
			t.Errorf("partition %d committed %d, log end %d", part, committed[part], end)
		}
	}
}
