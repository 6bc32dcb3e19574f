package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
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
