package engine

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// loadOrdersEOS is the orders example with delivery: exactly_once, on b.
func loadOrdersEOS(t *testing.T, b *devbroker.Broker, extra string) *pipeline.Pipeline {
	t.Helper()
	src, err := os.ReadFile("../pipelines/orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "\nkafka:", "\ndelivery: exactly_once\nkafka:", 1)
	text = strings.Replace(text, "  start: earliest", "  start: earliest\n  commit_interval: 100ms\n"+extra, 1)
	env := func(k string) (string, bool) {
		if k == "KAFKA_BROKERS" {
			return strings.Join(b.Addrs(), ","), true
		}
		return "", false
	}
	p, diags := pipeline.Parse("orders.yaml", []byte(text), pipeline.Options{Env: env, BaseDir: ".."})
	if diags.Errors() > 0 {
		t.Fatal(diags.Err())
	}
	return p
}

// readOrdersCommitted reads the three outputs of the orders example as read_committed
// readers see them.
func readOrdersCommitted(t *testing.T, b *devbroker.Broker) (outs, bigs, dlq []devbroker.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got [3][]devbroker.Record
	for i, topic := range []string{"orders-out", "orders-big", "orders-dlq"} {
		recs, err := b.ReadCommitted(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = recs
	}
	return got[0], got[1], got[2]
}

// runUntilCaughtUp runs p until its group committed the end of orders, then stops it.
func runUntilCaughtUp(t *testing.T, b *devbroker.Broker, p *pipeline.Pipeline) {
	t.Helper()
	run, err := ConnectKafka(p, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx) }()
	waitFor(t, 120*time.Second, "the group to commit the end of orders", func() bool { return b.CaughtUp("order-processors", "orders") })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The orders example in transactions: every record once in its sink or the DLQ, as
// read_committed readers see them, and the offsets committed at the log end.
func TestExactlyOnceOrders(t *testing.T) {
	const n = 20_000
	b := startOrdersBroker(t, 3)
	feed := devbroker.OrdersFeed(n)
	if err := b.Produce(context.Background(), "orders", feed); err != nil {
		t.Fatal(err)
	}
	defer verifyNoLeaks(t)()
	runUntilCaughtUp(t, b, loadOrdersEOS(t, b, ""))
	outs, bigs, dlq := readOrdersCommitted(t, b)
	checkOrders(t, feed, outs, bigs, dlq)
}
