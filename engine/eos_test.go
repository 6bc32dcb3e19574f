package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// loadOrdersEOS is the orders example with delivery: exactly_once, on b, with the source
// fields in extra in place of the example's.
func loadOrdersEOS(t *testing.T, b *devbroker.Broker, extra string) *pipeline.Pipeline {
	t.Helper()
	src, err := os.ReadFile("../pipelines/orders-exactly-once.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	for _, line := range strings.Split(strings.TrimSpace(extra), "\n") { // a field in extra replaces the example's
		if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			text = regexp.MustCompile(`(?m)^  `+name+`:.*\n`).ReplaceAllString(text, "")
		}
	}
	text = strings.Replace(text, "  start: earliest", "  start: earliest\n"+extra, 1)
	env := func(k string) (string, bool) {
		if k == "KAFKA_BROKERS" {
			return strings.Join(b.Addrs(), ","), true
		}
		return "", false
	}
	p, diags := pipeline.Parse("orders-exactly-once.yaml", []byte(text), pipeline.Options{Env: env, BaseDir: ".."})
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
		waitFor(t, 30*time.Second, "no transaction open in "+topic, func() bool { return b.Stable(topic) })
		recs, err := b.Read(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = recs
	}
	return got[0], got[1], got[2]
}

// runUntilCaughtUp runs p until its group committed the end of orders, then stops it.
func runUntilCaughtUp(t *testing.T, b *devbroker.Broker, p *pipeline.Pipeline) *KafkaRun {
	t.Helper()
	run, stop, _ := startRun(t, p)
	waitCaughtUp(t, b)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	return run
}

func waitCaughtUp(t *testing.T, b *devbroker.Broker) {
	t.Helper()
	waitFor(t, 120*time.Second, "the group to commit the end of orders", func() bool { return b.CaughtUp("order-processors", "orders") })
}

// startRun runs p in the background; stop ends the run and returns its error, ended closes
// when the run ended (by itself, or stopped). The test's end stops it.
func startRun(t *testing.T, p *pipeline.Pipeline) (run *KafkaRun, stop func() error, ended <-chan struct{}) {
	t.Helper()
	run, err := ConnectKafka(p, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { runErr = run.Run(ctx); close(done) }()
	stop = func() error {
		cancel()
		<-done
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return run, stop, done
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
	run := runUntilCaughtUp(t, b, loadOrdersEOS(t, b, ""))
	outs, bigs, dlq := readOrdersCommitted(t, b)
	checkOrders(t, feed, outs, bigs, dlq)
	if s := run.Source.Stats(); s.Commits == 0 || s.Aborts != 0 {
		t.Errorf("%d transactions committed, %d aborted; want some and none", s.Commits, s.Aborts)
	}
}

// Outputs are invisible to read_committed readers until their transaction commits: in the
// middle of a long transaction the broker holds acknowledged writes that Read does not see.
func TestExactlyOnceInvisibleUntilCommit(t *testing.T) {
	const n = 300
	b := startOrdersBroker(t, 3)
	feed := devbroker.OrdersFeed(n)
	if err := b.Produce(context.Background(), "orders", feed); err != nil {
		t.Fatal(err)
	}
	defer verifyNoLeaks(t)()
	run, stop, _ := startRun(t, loadOrdersEOS(t, b, "  commit_interval: 8s\n"))
	waitFor(t, 30*time.Second, "writes acknowledged in the open transaction", func() bool { return run.Engine.Stats()["out"].Acked > 0 })
	if c := run.Source.Stats().Commits; c != 0 {
		t.Fatalf("%d transactions committed already: the test needs the first one open", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	written := int64(0)
	for _, end := range b.EndOffsets("orders-out") {
		written += end
	}
	if seen, err := b.Read(ctx, "orders-out"); err != nil || len(seen) != 0 || written == 0 {
		t.Fatalf("in the open transaction: %d records in the log, %d read committed (%v); want some and none", written, len(seen), err)
	}
	// The lag metrics: each partition's high watermark is known from the fetches, its
	// position once a transaction commits it, and the lag is the records between.
	ends := b.EndOffsets("orders")
	parts := run.Source.Stats().Partitions
	if len(parts) != len(ends) {
		t.Fatalf("stats of %d partitions, want the %d assigned", len(parts), len(ends))
	}
	for name, p := range parts {
		if p.HighWater != ends[p.Partition] || p.Position != -1 {
			t.Errorf("%s in the open first transaction: high water %d, position %d; want %d and none", name, p.HighWater, p.Position, ends[p.Partition])
		}
	}
	waitCaughtUp(t, b)
	waitFor(t, 10*time.Second, "the lag of every partition at 0", func() bool {
		s := run.Source.Stats()
		for _, p := range s.Partitions {
			if p.Lag != 0 || p.Position != ends[p.Partition] {
				return false
			}
		}
		return len(s.Partitions) == len(ends)
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	outs, bigs, dlq := readOrdersCommitted(t, b)
	checkOrders(t, feed, outs, bigs, dlq)
}

// A member that loses partitions in the middle of a transaction aborts it before the revoke
// returns; the partitions it keeps are read again from their committed offsets (without
// the rewind their records would be lost), those it lost are read by the new member, and
// every record comes out once.
func TestExactlyOnceAbortsOnRevoke(t *testing.T) {
	const n = 6000
	b := startOrdersBroker(t, 6)
	feed := devbroker.OrdersFeed(n)
	if err := b.Produce(context.Background(), "orders", feed); err != nil {
		t.Fatal(err)
	}
	defer verifyNoLeaks(t)()
	// Transactions of 5 s: the second member joins while the first one's is open.
	fields := "  commit_interval: 5s\n  heartbeat_interval: 200ms\n  max_pending: 100000\n  instance_id: "
	a, stopA, _ := startRun(t, loadOrdersEOS(t, b, fields+"a\n"))
	waitFor(t, 30*time.Second, "the first member to read in a transaction", func() bool { return a.Source.Stats().Pending > 0 })
	_, stopB, _ := startRun(t, loadOrdersEOS(t, b, fields+"b\n"))
	waitFor(t, 30*time.Second, "the first member's transaction to abort at the revoke", func() bool { return a.Source.Stats().Revokes > 0 })
	waitCaughtUp(t, b)
	if err := errors.Join(stopA(), stopB()); err != nil {
		t.Fatal(err)
	}
	outs, bigs, dlq := readOrdersCommitted(t, b)
	checkOrders(t, feed, outs, bigs, dlq)
}

// The broker's answers a transaction can meet. The group's and the coordinator's (a stale
// generation, an unknown member, a rebalance under way, a moved coordinator, a transaction
// still ending) abort the transaction or are retried, and the records come out once. A
// fenced producer, or one the broker no longer knows, is fatal for the producer: the run
// stops uncommitted, and the next run writes everything once.
func TestExactlyOnceBrokerErrors(t *testing.T) {
	cases := []struct {
		name  string
		key   kmsg.Key
		err   *kerr.Error
		fatal bool
	}{
		{"stale generation", kmsg.TxnOffsetCommit, kerr.IllegalGeneration, false},
		{"unknown member", kmsg.TxnOffsetCommit, kerr.UnknownMemberID, false},
		{"rebalance in progress", kmsg.TxnOffsetCommit, kerr.RebalanceInProgress, false},
		{"coordinator moved", kmsg.TxnOffsetCommit, kerr.NotCoordinator, false},
		{"coordinator not available", kmsg.EndTxn, kerr.CoordinatorNotAvailable, false},
		{"concurrent transactions", kmsg.TxnOffsetCommit, kerr.ConcurrentTransactions, false},
		{"producer fenced", kmsg.EndTxn, kerr.ProducerFenced, true},
		// franz-go rebuilds the producer's id (KIP-360), aborting the transaction.
		{"invalid producer id", kmsg.Produce, kerr.InvalidProducerIDMapping, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const n = 2000
			b := startOrdersBroker(t, 3)
			feed := devbroker.OrdersFeed(n)
			if err := b.Produce(context.Background(), "orders", feed); err != nil {
				t.Fatal(err)
			}
			defer verifyNoLeaks(t)()
			fault := b.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{c.key}, Err: c.err})
			// A fenced producer's transaction stays open until its timeout: keep it short.
			const fields = "  instance_id: one\n  transaction_timeout: 3s\n"
			p := loadOrdersEOS(t, b, fields)
			run, stop, ended := startRun(t, p)
			if c.fatal {
				waitFor(t, 60*time.Second, "the run to stop", func() bool { return isClosed(ended) })
				err := stop()
				if err == nil || !strings.Contains(err.Error(), "transaction") {
					t.Fatalf("the run ended with %v; want the transaction's error", err)
				}
				if b.CaughtUp("order-processors", "orders") {
					t.Fatal("the failed transaction's offsets were committed")
				}
				t.Logf("stopped: %v", err)
				run = runUntilCaughtUp(t, b, loadOrdersEOS(t, b, fields))
			} else {
				waitCaughtUp(t, b)
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			}
			if fault.Hits() == 0 {
				t.Fatalf("the broker never answered %v", c.err)
			}
			outs, bigs, dlq := readOrdersCommitted(t, b)
			checkOrders(t, feed, outs, bigs, dlq)
			t.Logf("%v on %s: %d hits, %d aborted, %d committed", c.err, c.key.Name(), fault.Hits(), run.Source.Stats().Aborts, run.Source.Stats().Commits)
		})
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// A stage that waits (the risk service of the payments example is down) longer than a
// transaction may stay open: the transaction is aborted at 80% of transaction_timeout, its
// records wait outside a transaction until the service answers, then are read again and
// written once; nothing is dead-lettered.
func TestExactlyOnceWaitsOutsideTransaction(t *testing.T) {
	const n = 2000
	var up atomic.Bool
	var lastFail atomic.Int64
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			lastFail.Store(time.Now().UnixNano())
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"score": 0.1}`)
	}))
	defer svc.Close()
	b := startBroker(t, 2, "payments", "payments-review", "payments-eur", "payments-usd", "payments-dlq")
	if err := b.Produce(context.Background(), "payments", paymentsFeed(n)); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../pipelines/payments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "\nkafka:", "\ndelivery: exactly_once\nkafka:", 1)
	text = strings.Replace(text, "  max_pending: 5000", "  max_pending: 5000\n  commit_interval: 100ms\n  transaction_timeout: 2s", 1)
	vars := map[string]string{"KAFKA_BROKERS": strings.Join(b.Addrs(), ","), "RISK_URL": svc.URL}
	p, diags := pipeline.Parse("payments.yaml", []byte(text), pipeline.Options{Env: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, BaseDir: "../pipelines"})
	if diags.Errors() > 0 {
		t.Fatal(diags.Err())
	}
	defer verifyNoLeaks(t)()
	run, stop, _ := startRun(t, p)
	waitFor(t, 60*time.Second, "a transaction to abort while the service is down", func() bool { return run.Source.Stats().Aborts > 0 })
	// The service stays down past another transaction's deadline (1.6 s): one begun now
	// would abort too. The breaker's probes show the outage goes on.
	aborted := time.Now()
	waitFor(t, 60*time.Second, "the service to fail a call 2.5 s after the abort", func() bool {
		return time.Duration(lastFail.Load()-aborted.UnixNano()) > 2500*time.Millisecond
	})
	if a := run.Source.Stats().Aborts; a != 1 {
		t.Fatalf("%d transactions aborted: the records waited in transactions, not outside", a)
	}
	up.Store(true)
	waitFor(t, 120*time.Second, "the group to commit the end of payments", func() bool { return b.CaughtUp("payment-scorers", "payments") })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for _, topic := range []string{"payments-review", "payments-eur", "payments-usd", "payments-dlq"} {
		waitFor(t, 30*time.Second, "no transaction open in "+topic, func() bool { return b.Stable(topic) })
		recs, err := b.Read(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if topic == "payments-dlq" && len(recs) > 0 {
			t.Fatalf("%d records dead-lettered during the outage (first: %v)", len(recs), first(recs))
		}
		for _, r := range recs {
			var m map[string]any
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Fatal(err)
			}
			id, _ := m["payment_id"].(string)
			if seen[id] {
				t.Fatalf("payment %s written twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("%d of %d payments written", len(seen), n)
	}
	t.Logf("%d transactions aborted during the outage; every payment once", run.Source.Stats().Aborts)
}
