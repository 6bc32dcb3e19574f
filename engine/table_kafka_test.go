package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
)

const tableKafka = `
version: 1
name: orders-enriched
kafka: {brokers: ${KAFKA_BROKERS}}
source: {type: kafka, topics: [orders], group: ${GROUP}}
state: {dir: ${STATE_DIR}}
stages:
  - name: parse
    type: decode
    schema: {id: int, customer: string}
  - name: cust
    type: enrich
    table:
      topic: customers
      key: msg.customer
      schema: {name: string, tier: string}
      max_wait: 20s
    into: customer
    on_missing: ${ON_MISSING}
sinks:
  - {name: out, type: kafka, topic: ${OUT}}
dlq: {type: kafka, topic: ${DLQ}}
`

// customerRec is a customers record in partition p (value "" : a tombstone).
func customerRec(p int32, id, tier string) devbroker.Record {
	r := devbroker.Record{Key: []byte(id), Partition: p}
	if tier != "" {
		r.Value = []byte(fmt.Sprintf(`{"name": "name of %s", "tier": %q}`, id, tier))
	}
	return r
}

func orderRecs(from, to int, customer func(i int) string) []devbroker.Record {
	var recs []devbroker.Record
	for i := from; i < to; i++ {
		recs = append(recs, devbroker.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf(`{"id": %d, "customer": %q}`, i, customer(i)))})
	}
	return recs
}

// enriched reads topic's orders by id: the customer's tier ("<null>" when the field is null,
// "<none>" when there is none).
func enriched(t *testing.T, b *devbroker.Broker, topic string) map[int]string {
	t.Helper()
	out := map[int]string{}
	for _, r := range mustRead(t, b, topic) {
		var o struct {
			ID       int             `json:"id"`
			Customer json.RawMessage `json:"customer"`
		}
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatal(err)
		}
		var c struct{ Tier string }
		switch {
		case string(o.Customer) == "null":
			out[o.ID] = "<null>"
		case len(o.Customer) == 0 || o.Customer[0] != '{':
			out[o.ID] = "<none>"
		default:
			_ = json.Unmarshal(o.Customer, &c)
			out[o.ID] = c.Tier
		}
	}
	return out
}

// reasons reads the DLQ's orders: their reasons by key.
func reasons(t *testing.T, b *devbroker.Broker, topic string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range mustRead(t, b, topic) {
		var hs []record.Header
		for k, v := range r.Headers {
			hs = append(hs, record.Header{Key: k, Value: []byte(v)})
		}
		info, err := dlq.Decode(hs)
		if err != nil {
			t.Fatal(err)
		}
		out[string(r.Key)] = info.Failure.Reason
	}
	return out
}

// tableRun is a run of tableKafka going on in the background.
type tableRun struct {
	run  *KafkaRun
	p    *pipeline.Pipeline
	stop func() error
}

func startTableRun(t *testing.T, b *devbroker.Broker, env map[string]string) *tableRun {
	t.Helper()
	vars := map[string]string{"KAFKA_BROKERS": strings.Join(b.Addrs(), ",")}
	for k, v := range env {
		vars[k] = v
	}
	p, diags := pipeline.Parse("orders-enriched.yaml", []byte(tableKafka), pipeline.Options{Env: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, BaseDir: "."})
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	p.KafkaSource().Start, p.KafkaSource().CommitInterval = "earliest", 100*time.Millisecond
	run, err := ConnectKafka(p, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx) }()
	return &tableRun{run: run, p: p, stop: func() error { cancel(); return <-done }}
}

func (r *tableRun) caughtUp(t *testing.T, b *devbroker.Broker) {
	t.Helper()
	waitFor(t, 60*time.Second, "the group to commit the end of orders", func() bool { return b.CaughtUp(r.p.KafkaSource().Group, "orders") })
}

func (r *tableRun) stats() map[string]int64 { return r.run.Engine.Stats()["cust"].Stage }

// An enrich from a compacted topic of 3 partitions, written in transactions: the table is
// read to its end before orders flow (a deleted customer's orders to the DLQ, naming the key);
// a customer updated mid-run enriches the later orders with its new value, one deleted
// mid-run sends them to the DLQ, an aborted transaction's values are never seen. A clean
// restart reads on from the store's offsets; a lost state dir is restored from the topic.
func TestKafkaTableEnrich(t *testing.T) {
	b := startBroker(t, 3, "orders", "customers", "orders-out", "orders-dlq")
	defer verifyNoLeaks(t)()
	dir := t.TempDir()
	env := map[string]string{"STATE_DIR": dir, "GROUP": "orders-enriched", "ON_MISSING": "dlq", "OUT": "orders-out", "DLQ": "orders-dlq"}
	manual := kgo.RecordPartitioner(kgo.ManualPartitioner())
	var customers []devbroker.Record
	for i := range 10 {
		customers = append(customers, customerRec(int32(i%3), fmt.Sprintf("c%d", i), "bronze"))
	}
	customers = append(customers, customerRec(0, "c9", "")) // c9 deleted
	// A key is in one partition of the table, as a producer's partitioner puts it: across
	// partitions, the table's order is not the topic's.
	if err := b.ProduceTxn(t.Context(), "customers", "feed-customers", customers, true); err != nil {
		t.Fatal(err)
	}
	feed := func(recs []devbroker.Record) {
		t.Helper()
		if err := b.Produce(t.Context(), "orders", recs); err != nil {
			t.Fatal(err)
		}
	}
	byCustomer := func(i int) string { return fmt.Sprintf("c%d", i%10) }
	feed(orderRecs(0, 100, byCustomer))

	r := startTableRun(t, b, env)
	r.caughtUp(t, b)
	if st := r.stats(); st["restored"] < 11 || st["table_keys"] != 9 || st["restoring"] != 0 {
		t.Errorf("after the restore: %v", st)
	}
	// Mid-run, each in its key's partition: c1 updated, c2 deleted, three new customers
	// (once the table has 11 keys, it has all of them); and an aborted transaction's update
	// of c3.
	if err := b.ProduceTxn(t.Context(), "customers", "feed-customers", []devbroker.Record{customerRec(1, "c3", "aborted")}, false); err != nil {
		t.Fatal(err)
	}
	mid := []devbroker.Record{customerRec(1, "c1", "gold"), customerRec(1, "c10", "new"), customerRec(2, "c2", ""), customerRec(2, "c11", "new"), customerRec(2, "c12", "new")}
	if err := b.Produce(t.Context(), "customers", mid, manual); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the table to have the changes", func() bool { return r.stats()["table_keys"] == 11 })
	feed(orderRecs(100, 200, byCustomer))
	r.caughtUp(t, b)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	tiers, dead := enriched(t, b, "orders-out"), reasons(t, b, "orders-dlq")
	for i := range 200 {
		c := byCustomer(i)
		want := "bronze"
		switch {
		case c == "c9", c == "c2" && i >= 100:
			want = "DLQ"
		case c == "c1" && i >= 100:
			want = "gold"
		}
		got, ok := tiers[i]
		if reason, dlqd := dead[fmt.Sprint(i)]; dlqd {
			got, ok = "DLQ", true
			if !strings.Contains(reason, fmt.Sprintf(`no key %q in table customers`, c)) {
				t.Errorf("order %d's reason: %s", i, reason)
			}
		}
		if !ok || got != want {
			t.Errorf("order %d (%s): %q, want %q", i, c, got, want)
		}
	}
	if len(tiers)+len(dead) != 200 {
		t.Errorf("%d orders out, %d dead-lettered; want 200 in all", len(tiers), len(dead))
	}

	// A clean restart reads on from the store: nothing to restore.
	feed(orderRecs(200, 210, byCustomer))
	r = startTableRun(t, b, env)
	r.caughtUp(t, b)
	if st := r.stats(); st["restored"] != 0 || st["table_keys"] != 11 {
		t.Errorf("after a clean restart: %v", st)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// A lost state dir: the table is read again from the topic.
	if err := os.RemoveAll(filepath.Join(dir, "orders-enriched")); err != nil {
		t.Fatal(err)
	}
	feed(orderRecs(210, 220, func(int) string { return "c1" }))
	r = startTableRun(t, b, env)
	r.caughtUp(t, b)
	if st := r.stats(); st["restored"] < 15 || st["table_keys"] != 11 {
		t.Errorf("after the state dir was lost: %v", st)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	tiers = enriched(t, b, "orders-out")
	for i := 210; i < 220; i++ {
		if tiers[i] != "gold" {
			t.Errorf("order %d after the restore: %q, want gold", i, tiers[i])
		}
	}
}

// on_missing: null sets the field to null; wait holds an order until its customer appears.
func TestKafkaTableOnMissing(t *testing.T) {
	b := startBroker(t, 2, "orders", "customers", "out-null", "out-wait", "dlq")
	defer verifyNoLeaks(t)()
	if err := b.Produce(t.Context(), "customers", []devbroker.Record{customerRec(0, "known", "silver")}); err != nil {
		t.Fatal(err)
	}
	orders := orderRecs(0, 4, func(i int) string { return []string{"known", "unknown", "known", "later"}[i] })
	if err := b.Produce(t.Context(), "orders", orders); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"STATE_DIR": t.TempDir(), "GROUP": "null", "ON_MISSING": "null", "OUT": "out-null", "DLQ": "dlq"}
	r := startTableRun(t, b, env)
	r.caughtUp(t, b)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	got := enriched(t, b, "out-null")
	if want := map[int]string{0: "silver", 1: "<null>", 2: "silver", 3: "<null>"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("on_missing: null: %v, want %v", got, want)
	}

	env = map[string]string{"STATE_DIR": t.TempDir(), "GROUP": "wait", "ON_MISSING": "wait", "OUT": "out-wait", "DLQ": "dlq"}
	r = startTableRun(t, b, env)
	waitFor(t, 30*time.Second, "orders to wait for their customers", func() bool { return r.stats()["table_waiting"] >= 1 })
	if err := b.Produce(t.Context(), "customers", []devbroker.Record{customerRec(0, "unknown", "fresh"), customerRec(0, "later", "fresh")}); err != nil {
		t.Fatal(err)
	}
	r.caughtUp(t, b)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	got = enriched(t, b, "out-wait")
	if want := map[int]string{0: "silver", 1: "fresh", 2: "silver", 3: "fresh"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("on_missing: wait: %v, want %v", got, want)
	}
	if d := mustRead(t, b, "dlq"); len(d) != 0 {
		t.Errorf("%d records in the DLQ, want none", len(d))
	}
}
