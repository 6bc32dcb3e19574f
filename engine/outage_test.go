package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// An outage of the risk service in the middle of the payments example: the records that
// arrive meanwhile wait (the stage stops taking records, nothing is charged an attempt), the
// breaker probes, and once the service answers again every record arrives with its score.
// Before the breaker waited, hundreds of good records went to the DLQ in such an outage.
func TestKafkaEnrichOutage(t *testing.T) {
	const records, downAfter = 8000, 2000
	// A call after a quiet this long is a probe: while the breaker is closed, thousands of
	// waiting records call without a pause; once it is open, only probes call, the first
	// after half a second (stages.probeFirst), then less and less often.
	const probeGap = 400 * time.Millisecond
	var answered, failed, probesFailed, lastCall, downSince, waited atomic.Int64
	var down atomic.Bool
	// The service goes down after downAfter answers, and comes back once two probes failed.
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixNano()
		gap := time.Duration(now - lastCall.Swap(now))
		if !down.Load() && answered.Load() >= downAfter && downSince.CompareAndSwap(0, now) {
			down.Store(true)
		}
		if down.Load() && gap >= probeGap && probesFailed.Add(1) > 2 {
			waited.Store(now - downSince.Load())
			down.Store(false)
		}
		if down.Load() {
			failed.Add(1)
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		answered.Add(1)
		fmt.Fprint(w, `{"score": 0.1}`)
	}))
	defer svc.Close()
	b := startBroker(t, 2, "payments", "payments-review", "payments-eur", "payments-usd", "payments-dlq")
	if err := b.Produce(context.Background(), "payments", paymentsFeed(records)); err != nil {
		t.Fatal(err)
	}
	run := runExample(t, b, "payments.yaml", map[string]string{"RISK_URL": svc.URL})
	if down.Load() || downSince.Load() == 0 {
		t.Fatal("the outage did not happen as planned")
	}
	got := 0
	for _, topic := range []string{"payments-review", "payments-eur", "payments-usd"} {
		got += len(mustRead(t, b, topic))
	}
	dlq := mustRead(t, b, "payments-dlq")
	if got != records || len(dlq) != 0 {
		t.Fatalf("%d of %d records arrived, %d went to the DLQ (first: %v)", got, records, len(dlq), first(dlq))
	}
	score := run.Engine.Stats()["score"].Stage
	if score["outages"] < 1 || score["waiting"] != 0 {
		t.Errorf("score counters %v: want an outage, and nobody waiting now", score)
	}
	t.Logf("outage of %v: %d calls failed, %d answered, %d retries, 0 dead-lettered", time.Duration(waited.Load()).Round(time.Millisecond), failed.Load(), answered.Load(), score["retries"])
}

func first(rs []devbroker.Record) map[string]string {
	if len(rs) == 0 {
		return nil
	}
	return rs[0].Headers
}

// paymentsFeed is n payments of 100 accounts for the payments example, half in EUR.
func paymentsFeed(n int) []devbroker.Record {
	var feed []devbroker.Record
	for i := range n {
		account := fmt.Sprintf("acct-%d", i%100)
		currency := map[bool]string{true: "EUR", false: "USD"}[i%2 == 0]
		feed = append(feed, devbroker.Record{Key: []byte(account), Value: []byte(fmt.Sprintf(
			`{"payment_id":"p%d","account_id":%q,"amount":%d.5,"currency":%q,"created_at":"2026-01-01T00:00:00Z","card":{"bin":"4111","country":"DE"}}`,
			i, account, 10+i, currency))})
	}
	return feed
}
