package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// heldEOS enriches each record from ${SCORE_URL} in transactions whose drain and deadline
// are far longer than any test waits: a run that ends promptly did not wait for either.
const heldEOS = `version: 1
name: held
delivery: exactly_once
kafka: {brokers: "${KAFKA_BROKERS}"}
source:
  type: kafka
  topics: [in]
  start: earliest
  commit_interval: 100ms
  drain_timeout: 40s
  transaction_timeout: 40s
stages:
  - {name: parse, type: decode, schema: {id: string}}
  - name: score
    type: enrich
    http: {url: '"${SCORE_URL}/?id=" + msg.id', timeout: 1s, breaker: {failures: 1, cooldown: 1m}}
    into: risk
sinks:
  - {name: out, type: kafka, topic: out}
dlq: {type: kafka, topic: dlq}
`

// A stop at once (dev's --timeout, its second Ctrl-C: Engine.Abort) ends an exactly-once run
// in seconds while a stage holds the open transaction's records, not at drain_timeout or at
// 80% of transaction_timeout: the transaction aborts, no offset moves past the held records,
// and the next run reads them again and writes each once.
func TestExactlyOnceAbortWhileStageHolds(t *testing.T) {
	const n = 20
	cases := []struct {
		name  string
		drain bool // a graceful stop first, as dev's first Ctrl-C
	}{
		{"abort", false},
		{"abort during the drain", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var up atomic.Bool
			svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if !up.Load() {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				fmt.Fprint(w, `{"score": 0.5}`)
			}))
			defer svc.Close()
			b := startBroker(t, 1, "in", "out", "dlq")
			var feed []devbroker.Record
			for i := range n {
				feed = append(feed, devbroker.Record{Value: []byte(fmt.Sprintf(`{"id": "r%d"}`, i))})
			}
			if err := b.Produce(context.Background(), "in", feed); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"KAFKA_BROKERS": strings.Join(b.Addrs(), ","), "SCORE_URL": svc.URL}
			p, diags := pipeline.Parse("held.yaml", []byte(heldEOS), pipeline.Options{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
			if diags.Errors() > 0 {
				t.Fatal(diags.Err())
			}
			check := verifyNoLeaks(t)
			run, err := ConnectKafka(p, quiet)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- run.Run(ctx) }()
			waitFor(t, 30*time.Second, "records held in score within an open transaction", func() bool {
				return run.Engine.Stats()["score"].Stage["waiting"] > 0 && run.Source.Stats().Pending > 0
			})
			if c.drain {
				cancel()
			}
			start := time.Now()
			run.Engine.Abort()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("the run went on 15 s after Abort (drain_timeout and transaction_timeout are 40 s)")
			}
			t.Logf("ended %v after Abort", time.Since(start).Round(time.Millisecond))
			check()
			if got := b.Unfinished("held", "in"); got != n {
				t.Fatalf("%d records left uncommitted, want all %d: offsets moved past records a stage held", got, n)
			}
			if s := run.Source.Stats(); s.Commits != 0 || s.Aborts == 0 {
				t.Errorf("%d transactions committed, %d aborted; want none and some", s.Commits, s.Aborts)
			}
			// Nothing was lost: the next run reads the aborted transaction's records again.
			up.Store(true)
			runSource(t, b, "held.yaml", []byte(heldEOS), map[string]string{"SCORE_URL": svc.URL}, "")
			waitFor(t, 30*time.Second, "no transaction open in out", func() bool { return b.Stable("out") })
			outs := mustRead(t, b, "out")
			seen := map[string]bool{}
			for _, r := range outs {
				if seen[string(r.Value)] {
					t.Fatalf("written twice: %s", r.Value)
				}
				seen[string(r.Value)] = true
			}
			if len(seen) != n || len(mustRead(t, b, "dlq")) != 0 {
				t.Fatalf("%d of %d records written, %d dead-lettered", len(seen), n, len(mustRead(t, b, "dlq")))
			}
		})
	}
}
