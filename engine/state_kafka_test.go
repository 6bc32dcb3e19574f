package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

const dedupeKafka = `
version: 1
name: payments-once
kafka: {brokers: ${KAFKA_BROKERS}}
source: {type: kafka, topics: [payments], group: payments-once}
state: {dir: ${STATE_DIR}}
stages:
  - name: parse
    type: decode
    schema: {payment_id: string, amount: float}
  - name: once
    type: dedupe
    within: 1h
sinks:
  - {name: out, type: kafka, topic: payments-once}
`

// payments are records keyed by their payment id (so that a duplicate is read from the same
// partition as its first), for ids from..to-1.
func payments(from, to int) []devbroker.Record {
	var recs []devbroker.Record
	for i := from; i < to; i++ {
		id := fmt.Sprintf("p%d", i)
		recs = append(recs, devbroker.Record{Key: []byte(id), Value: []byte(fmt.Sprintf(`{"payment_id": %q, "amount": %d}`, id, i))})
	}
	return recs
}

// A dedupe's store survives a restart (read on from its checkpoint, not restored) and a lost
// state dir (restored from its changelog alone): no payment id passes twice.
func TestKafkaDedupeRestores(t *testing.T) {
	b := startBroker(t, 3, "payments", "payments-once")
	dir := t.TempDir()
	env := map[string]string{"STATE_DIR": dir}
	feed := func(recs []devbroker.Record) {
		t.Helper()
		if err := b.Produce(t.Context(), "payments", recs); err != nil {
			t.Fatal(err)
		}
	}
	passed := func() map[string]int {
		t.Helper()
		got := map[string]int{}
		for _, r := range mustRead(t, b, "payments-once") {
			got[string(r.Key)]++
		}
		return got
	}
	check := func(stage string, want int, run *KafkaRun, restored bool) {
		t.Helper()
		got := passed()
		for id, n := range got {
			if n > 1 {
				t.Errorf("%s: %s passed %d times", stage, id, n)
			}
		}
		if len(got) != want {
			t.Errorf("%s: %d ids passed, want %d", stage, len(got), want)
		}
		st := run.Engine.Stats()["once"].Stage
		if restored != (st["restored"] > 0) {
			t.Errorf("%s: restored %d changelog records; want a restore: %v", stage, st["restored"], restored)
		}
	}

	feed(append(payments(0, 200), payments(100, 150)...)) // 50 duplicates
	run := runSource(t, b, "dedupe.yaml", []byte(dedupeKafka), env, ".")
	check("first run", 200, run, false)
	if d := run.Engine.Stats()["once"].Stage["duplicates"]; d != 50 {
		t.Errorf("first run: %d duplicates counted, want 50", d)
	}
	if n := len(mustRead(t, b, "payments-once-once-changelog")); n != 200 {
		t.Errorf("the changelog holds %d changes, want 200", n)
	}

	feed(payments(150, 250)) // 50 seen before, 50 new
	run = runSource(t, b, "dedupe.yaml", []byte(dedupeKafka), env, ".")
	check("after a clean stop", 250, run, false)

	if err := os.RemoveAll(filepath.Join(dir, "payments-once")); err != nil {
		t.Fatal(err)
	}
	feed(payments(0, 260)) // all seen but the last 10
	run = runSource(t, b, "dedupe.yaml", []byte(dedupeKafka), env, ".")
	check("after the state dir was deleted", 260, run, true)
}

// txnEndFaults are the ends of transactions a stateful stage's store must follow under
// exactly-once: an abort, and two ends the broker may have applied without confirming.
var txnEndFaults = []struct {
	name  string
	fault func(c *kfake.Cluster)
}{
	{"aborted: stale generation", func(c *kfake.Cluster) {
		c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.TxnOffsetCommit}, Err: kerr.IllegalGeneration, Count: 2})
	}},
	{"not confirmed: EndTxn timed out after it was applied", func(c *kfake.Cluster) {
		c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.RequestTimedOut, Count: 2})
	}},
	{"not confirmed: connections dropped on TxnOffsetCommit", func(c *kfake.Cluster) { dropConnections(c, kmsg.TxnOffsetCommit, 3) }},
}

// Under exactly-once a dedupe's changes join the transaction: an aborted one leaves the store
// as it was, so its records, read again, are not taken for their own duplicates; an end the
// broker may have applied (not confirmed) has the stores read on from their changelogs, so
// that the duplicates of what it committed are still dropped. Each payment id once,
// read_committed, in transactions of 40 records, across a restart.
func TestKafkaDedupeExactlyOnce(t *testing.T) {
	for _, c := range txnEndFaults {
		t.Run(c.name, func(t *testing.T) {
			b := startBroker(t, 3, "payments", "payments-once")
			env := map[string]string{"STATE_DIR": t.TempDir()}
			src := []byte(strings.NewReplacer("version: 1", "version: 1\ndelivery: exactly_once",
				"group: payments-once}", "group: payments-once, max_pending: 40, instance_id: one}").Replace(dedupeKafka))
			feed := func(recs []devbroker.Record) {
				t.Helper()
				if err := b.Produce(t.Context(), "payments", recs); err != nil {
					t.Fatal(err)
				}
			}
			check := func(stage string, want int) {
				t.Helper()
				got := map[string]int{}
				for _, r := range readStable(t, b, "payments-once") {
					got[string(r.Key)]++
				}
				for id, n := range got {
					if n > 1 {
						t.Errorf("%s: %s passed %d times", stage, id, n)
					}
				}
				if len(got) != want {
					t.Errorf("%s: %d ids passed, want %d", stage, len(got), want)
				}
			}

			feed(append(payments(0, 200), payments(0, 200)...)) // each id twice, 200 records apart
			c.fault(b.Cluster)
			run := runSource(t, b, "dedupe.yaml", src, env, ".")
			check("first run", 200)
			if a := run.Source.Stats().Aborts; a == 0 {
				t.Errorf("no transaction aborted: the test shows nothing")
			}

			feed(payments(150, 250))
			runSource(t, b, "dedupe.yaml", src, env, ".")
			check("after a restart", 250)
		})
	}
}

// A dedupe by a field the topic is not keyed by: copies of a payment arrive in different
// partitions, and meet through the stage's repartition topic. Each payment id once, in both
// delivery modes; the outputs keep their records' own keys.
func TestKafkaDedupeRepartitioned(t *testing.T) {
	for _, delivery := range []string{"at_least_once", "exactly_once"} {
		t.Run(delivery, func(t *testing.T) {
			b := startBroker(t, 3, "payments", "payments-once")
			src := strings.NewReplacer("version: 1", "version: 1\ndelivery: "+delivery,
				"type: dedupe", "type: dedupe\n    key: msg.payment_id").Replace(dedupeKafka)
			var feed []devbroker.Record
			for copy := range 3 { // each payment three times, under three account keys
				for _, r := range payments(0, 100) {
					r.Key = []byte(fmt.Sprintf("account-%d", copy*7+len(feed)%5))
					feed = append(feed, r)
				}
			}
			if err := b.Produce(t.Context(), "payments", feed); err != nil {
				t.Fatal(err)
			}
			p, diags := pipeline.Parse("dedupe.yaml", []byte(src), pipeline.Options{BaseDir: ".", Env: func(k string) (string, bool) {
				return map[string]string{"KAFKA_BROKERS": strings.Join(b.Addrs(), ","), "STATE_DIR": t.TempDir()}[k], true
			}})
			if len(diags) > 0 {
				t.Fatal(diags.Err())
			}
			p.KafkaSource().Start = "earliest"
			defer verifyNoLeaks(t)()
			run, stop, ended := startRun(t, p)
			waitFor(t, 60*time.Second, "both topics read to their ends", func() bool {
				return isClosed(ended) || (b.CaughtUp("payments-once", "payments") && b.CaughtUp("payments-once", "payments-once-once-repartition"))
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, r := range readStable(t, b, "payments-once") {
				var body struct {
					PaymentID string `json:"payment_id"`
				}
				if err := json.Unmarshal(r.Value, &body); err != nil {
					t.Fatal(err)
				}
				got[body.PaymentID]++
				if !bytes.HasPrefix(r.Key, []byte("account-")) {
					t.Fatalf("an output keyed %q, not by its record's account", r.Key)
				}
			}
			for id, n := range got {
				if n != 1 {
					t.Errorf("payment %s passed %d times", id, n)
				}
			}
			if len(got) != 100 {
				t.Errorf("%d payments passed, want 100", len(got))
			}
			if n := len(mustRead(t, b, "payments-once-once-repartition")); n < len(feed) {
				t.Errorf("the repartition topic holds %d records, want at least %d", n, len(feed))
			}
			if d := run.Engine.Stats()["once"].Stage["duplicates"]; d != 200 {
				t.Errorf("%d duplicates counted, want 200", d)
			}
		})
	}
}
