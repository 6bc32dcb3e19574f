package engine

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

const aggregateKafka = `
version: 1
name: orders-agg
delivery: exactly_once
kafka: {brokers: ${KAFKA_BROKERS}}
source: {type: kafka, topics: [orders], group: orders-agg, max_pending: 40, instance_id: one}
state: {dir: ${STATE_DIR}}
stages:
  - name: parse
    type: decode
    schema: {customer: string, amount: int, at: int}
  - name: agg
    type: aggregate
    time: msg.at
    window: {tumbling: 1m}
    grace: 10s
    aggregates: {orders: count(), revenue: sum(msg.amount)}
sinks:
  - {name: out, type: kafka, topic: orders-per-minute}
dlq: {type: kafka, topic: orders-dlq}
`

// aggBase is the feed's first event time, unix ms.
var aggBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// aggOrders are orders i = from..to-1 of 12 customers, keyed by customer (so that a
// customer's orders are in one partition): two a second, out of order by up to 8 s (within
// the grace), and every 40th two minutes behind (late, once its partition has moved on).
func aggOrders(from, to int) []devbroker.Record {
	var recs []devbroker.Record
	for i := from; i < to; i++ {
		c := fmt.Sprintf("c%d", i%12)
		at := aggBase + int64(i)*500 - int64(i*7919%8000)
		if i%40 == 39 {
			at -= 2 * 60_000
		}
		recs = append(recs, devbroker.Record{Key: []byte(c), Value: []byte(fmt.Sprintf(`{"customer": %q, "amount": %d, "at": %d}`, c, i%17+1, at))})
	}
	return recs
}

type aggWindow struct {
	key   string
	start int64
}

// aggReference computes, from the feed as the topic holds it (each partition in order), the
// windows closed by its end, with their counts and sums, and the late records: the semantics
// of a 1-minute tumbling window with 10 s of grace, written again plainly.
func aggReference(t *testing.T, feed []devbroker.Record) (closed map[aggWindow][2]int64, late map[string]bool) {
	t.Helper()
	sort.Slice(feed, func(i, j int) bool {
		if feed[i].Partition != feed[j].Partition {
			return feed[i].Partition < feed[j].Partition
		}
		return feed[i].Offset < feed[j].Offset
	})
	closed, late = map[aggWindow][2]int64{}, map[string]bool{}
	open := map[int32]map[aggWindow][2]int64{}
	stream := map[int32]int64{}
	for _, r := range feed {
		var o struct {
			Customer string
			Amount   int64
			At       int64
		}
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatal(err)
		}
		if open[r.Partition] == nil {
			open[r.Partition], stream[r.Partition] = map[aggWindow][2]int64{}, o.At
		}
		s := max(stream[r.Partition], o.At)
		stream[r.Partition] = s
		for w, acc := range open[r.Partition] {
			if w.start+70_000 <= s {
				closed[w] = acc
				delete(open[r.Partition], w)
			}
		}
		start := o.At - ((o.At%60_000)+60_000)%60_000
		if start+70_000 <= s {
			late[fmt.Sprintf("%d@%d", r.Partition, r.Offset)] = true
			continue
		}
		w := aggWindow{o.Customer, start}
		acc := open[r.Partition][w]
		open[r.Partition][w] = [2]int64{acc[0] + 1, acc[1] + o.Amount}
	}
	return closed, late
}

// Under exactly-once an aggregate's windows, its stream time and its closes join the
// transaction: an aborted one leaves the store as it was, so the records read again fold
// into the windows as they were, and nothing is emitted twice; an end the broker may have
// applied (not confirmed) has the stores read on from their changelogs. Each window once,
// read_committed, with the count and sum a reference computes from the feed, and each late
// record in the DLQ once, across a restart.
func TestKafkaAggregateExactlyOnce(t *testing.T) {
	for _, c := range txnEndFaults {
		t.Run(c.name, func(t *testing.T) {
			b := startBroker(t, 3, "orders", "orders-per-minute", "orders-dlq")
			env := map[string]string{"STATE_DIR": t.TempDir()}
			feed := func(recs []devbroker.Record) {
				t.Helper()
				if err := b.Produce(t.Context(), "orders", recs); err != nil {
					t.Fatal(err)
				}
			}
			check := func(stage string) {
				t.Helper()
				closed, late := aggReference(t, readStable(t, b, "orders"))
				got := map[aggWindow][2]int64{}
				for _, r := range readStable(t, b, "orders-per-minute") {
					var w struct {
						Key         string
						WindowStart time.Time `json:"window_start"`
						Orders      int64
						Revenue     int64
					}
					if err := json.Unmarshal(r.Value, &w); err != nil {
						t.Fatalf("%s: %s: %v", stage, r.Value, err)
					}
					k := aggWindow{w.Key, w.WindowStart.UnixMilli()}
					if _, twice := got[k]; twice {
						t.Errorf("%s: window %v emitted twice", stage, k)
					}
					got[k] = [2]int64{w.Orders, w.Revenue}
				}
				if len(got) != len(closed) {
					t.Errorf("%s: %d windows emitted, the reference closed %d", stage, len(got), len(closed))
				}
				for w, want := range closed {
					if got[w] != want {
						t.Errorf("%s: window %v: orders and revenue %v, want %v", stage, w, got[w], want)
					}
				}
				dead := map[string]int{}
				for _, r := range readStable(t, b, "orders-dlq") {
					if !strings.HasPrefix(r.Headers[dlq.HeaderError], "late:") {
						t.Errorf("%s: dead-lettered for %q", stage, r.Headers[dlq.HeaderError])
					}
					dead[r.Headers[dlq.HeaderSourcePartition]+"@"+r.Headers[dlq.HeaderSourceOffset]]++
				}
				for k, n := range dead {
					if n != 1 || !late[k] {
						t.Errorf("%s: %s dead-lettered %d times (late: %v)", stage, k, n, late[k])
					}
				}
				t.Logf("%s: %d windows, %d late records", stage, len(got), len(dead))
				if len(dead) != len(late) || len(late) == 0 {
					t.Errorf("%s: %d records dead-lettered, the reference has %d late", stage, len(dead), len(late))
				}
			}

			feed(aggOrders(0, 480))
			c.fault(b.Cluster)
			run := runSource(t, b, "aggregate.yaml", []byte(aggregateKafka), env, ".")
			check("first run")
			t.Logf("aborts: %d", run.Source.Stats().Aborts)
			if a := run.Source.Stats().Aborts; a == 0 {
				t.Errorf("no transaction aborted: the test shows nothing")
			}
			if n := run.Engine.Stats()["agg"].Stage["windows_closed"]; n == 0 {
				t.Errorf("no window closed")
			}

			feed(aggOrders(480, 720))
			runSource(t, b, "aggregate.yaml", []byte(aggregateKafka), env, ".")
			check("after a restart")
		})
	}
}
