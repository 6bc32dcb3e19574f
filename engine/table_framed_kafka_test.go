package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/pythia-pipe/pythia-pipe/codec"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
)

// tableFramedKafka enriches JSON orders from a table of Avro or Protobuf values; the map
// after it reads the customer's tier as the table's schema types it.
const tableFramedKafka = `
version: 1
name: orders-enriched
kafka: {brokers: ${KAFKA_BROKERS}}
registry: {urls: http://in-process-registry}
source: {type: kafka, topics: [orders], group: enrichers}
state: {dir: ${STATE_DIR}}
stages:
  - name: parse
    type: decode
    schema: {id: int, customer: string}
  - name: cust
    type: enrich
    table: {topic: customers, key: msg.customer, format: ${FORMAT}}
    into: customer
    on_missing: dlq
  - name: shape
    type: map
    set: {gold: msg.customer.tier == "gold"}
sinks:
  - {name: out, type: kafka, topic: orders-out}
dlq: {type: kafka, topic: orders-dlq}
`

const (
	customerAvro = `{"type":"record","name":"Customer","namespace":"crm","fields":[{"name":"name","type":"string"},
		{"name":"tier","type":{"type":"enum","name":"Tier","symbols":["bronze","silver","gold"]}}]}`
	customerProto = `syntax = "proto3"; package crm; message Customer { string name = 1; string tier = 2; }`
)

// customerWriter frames a customer's value as the registry's schema id 1 writes it.
type customerWriter func(t *testing.T, name, tier string) []byte

func avroCustomers(t *testing.T, name, tier string) []byte {
	t.Helper()
	a, err := codec.ParseAvro(customerAvro)
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.Encode(schemareg.Append(nil, 1, nil), map[string]any{"name": name, "tier": tier})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func protoCustomers(t *testing.T, name, tier string) []byte {
	t.Helper()
	f, err := codec.CompileProto(context.Background(), "c.proto", map[string]string{"c.proto": customerProto})
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.Message("Customer")
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Encode(schemareg.Append(nil, 1, m.Indexes()), map[string]any{"name": name, "tier": tier})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldOrders reads the enriched orders: by id, the customer's tier and whether the map
// found it gold.
func goldOrders(t *testing.T, b *devbroker.Broker) map[int]string {
	t.Helper()
	out := map[int]string{}
	for _, r := range mustRead(t, b, "orders-out") {
		var o struct {
			ID       int  `json:"id"`
			Gold     bool `json:"gold"`
			Customer struct {
				Name, Tier string
			} `json:"customer"`
		}
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatal(err)
		}
		out[o.ID] = fmt.Sprintf("%s %s gold=%v", o.Customer.Name, o.Customer.Tier, o.Gold)
	}
	return out
}

// A table of Avro values and one of Protobuf values, their schemas in the registry under
// customers-value, on the in-process broker: restored before orders flow and followed as
// customers change; a value not framed is left out (its orders to the DLQ) and counted, and
// the map after the enrich reads the tier the table's schema types.
func TestKafkaTableEnrichFramed(t *testing.T) {
	cases := []struct {
		format string
		schema sr.Schema
		value  customerWriter
	}{
		{"avro", sr.Schema{Schema: customerAvro, Type: sr.TypeAvro}, avroCustomers},
		{"protobuf", sr.Schema{Schema: customerProto, Type: sr.TypeProtobuf}, protoCustomers},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			b := startBroker(t, 2, "orders", "customers", "orders-out", "orders-dlq")
			defer verifyNoLeaks(t)()
			reg := srfake.NewRegistry()
			reg.SeedSchema("customers-value", 1, 1, c.schema)
			vars := map[string]string{"KAFKA_BROKERS": strings.Join(b.Addrs(), ","), "STATE_DIR": t.TempDir(), "FORMAT": c.format}
			p, diags := pipeline.Parse("orders-enriched.yaml", []byte(tableFramedKafka), pipeline.Options{BaseDir: ".",
				Env:      func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
				Registry: schemareg.Options{Transport: schemareg.InProcess(reg.Handler())}})
			if len(diags) > 0 {
				t.Fatal(diags.Err())
			}
			if got, _ := p.StageByName("cust").Out.Field("customer"); got == nil || got.String() != "{name: string, tier: string}" {
				t.Fatalf("the enrichment is typed %v, want the registry's schema", got)
			}
			p.KafkaSource().Start, p.KafkaSource().CommitInterval = "earliest", 100*time.Millisecond

			customers := []devbroker.Record{
				{Key: []byte("c0"), Value: c.value(t, "Ada", "gold"), Partition: 0},
				{Key: []byte("c1"), Value: c.value(t, "Bob", "bronze"), Partition: 1},
				{Key: []byte("c2"), Value: []byte(`{"name": "Cy", "tier": "gold"}`), Partition: 0}, // not framed
			}
			manual := kgo.RecordPartitioner(kgo.ManualPartitioner())
			if err := b.Produce(t.Context(), "customers", customers, manual); err != nil {
				t.Fatal(err)
			}
			byCustomer := func(i int) string { return fmt.Sprintf("c%d", i%3) }
			if err := b.Produce(t.Context(), "orders", orderRecs(0, 30, byCustomer)); err != nil {
				t.Fatal(err)
			}
			run, err := ConnectKafka(p, quiet)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- run.Run(ctx) }()
			stats := func() map[string]int64 { return run.Engine.Stats()["cust"].Stage }
			caughtUp := func() {
				t.Helper()
				waitFor(t, 60*time.Second, "the group to commit the end of orders", func() bool { return b.CaughtUp("enrichers", "orders") })
			}
			caughtUp()
			if st := stats(); st["table_keys"] != 2 || st["table_invalid"] != 1 || st["restoring"] != 0 {
				t.Errorf("after the restore: %v", st)
			}
			// c1 changes, then c3 comes after it in its partition: once the table has c3, it has
			// c1's change.
			mid := []devbroker.Record{{Key: []byte("c1"), Value: c.value(t, "Bob", "gold"), Partition: 1}, {Key: []byte("c3"), Value: c.value(t, "Di", "silver"), Partition: 1}}
			if err := b.Produce(t.Context(), "customers", mid, manual); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "the table to have the changes", func() bool { return stats()["table_keys"] == 3 })
			if err := b.Produce(t.Context(), "orders", orderRecs(30, 60, byCustomer)); err != nil {
				t.Fatal(err)
			}
			caughtUp()
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			got, dead := goldOrders(t, b), reasons(t, b, "orders-dlq")
			for i := range 60 {
				want := map[string]string{"c0": "Ada gold gold=true", "c1": "Bob bronze gold=false", "c2": "DLQ"}[byCustomer(i)]
				if byCustomer(i) == "c1" && i >= 30 {
					want = "Bob gold gold=true"
				}
				out, ok := got[i]
				if reason, dlqd := dead[fmt.Sprint(i)]; dlqd {
					out, ok = "DLQ", true
					if !strings.Contains(reason, `no key "c2" in table customers`) {
						t.Errorf("order %d's reason: %s", i, reason)
					}
				}
				if !ok || out != want {
					t.Errorf("order %d (%s): %q, want %q", i, byCustomer(i), out, want)
				}
			}
		})
	}
}
