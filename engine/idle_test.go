package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// With idle_close, the last windows close when traffic stops: a partition idle for idle_close
// has its stream time move on with the clock, so its windows close once over, though no
// record comes after them; each is emitted once, with its count, in both delivery modes.
func TestKafkaAggregateIdleClose(t *testing.T) {
	for _, delivery := range []string{"at_least_once", "exactly_once"} {
		t.Run(delivery, func(t *testing.T) {
			b := startBroker(t, 2, "orders", "orders-per-minute", "orders-dlq")
			src := `
version: 1
name: orders
delivery: ` + delivery + `
kafka: {brokers: "${KAFKA_BROKERS}"}
source: {type: kafka, topics: [orders], group: per-minute}
state: {dir: "${STATE_DIR}"}
stages:
  - name: parse
    type: decode
    schema: {customer: string, amount: int}
  - name: agg
    type: aggregate
    window: {tumbling: 2s}
    idle_close: 300ms
    aggregates: {orders: count(), revenue: sum(msg.amount)}
sinks:
  - {name: out, type: kafka, topic: orders-per-minute}
dlq: {type: kafka, topic: orders-dlq}
`
			// Two customers, three orders each, in one 2-second window: it closes only when the
			// stream time passes its end, which no record brings; idle, the stream time moves on
			// with the clock.
			at := time.Now().Truncate(2 * time.Second)
			var feed []devbroker.Record
			for i := range 6 {
				c := fmt.Sprintf("c%d", i%2)
				feed = append(feed, devbroker.Record{Key: []byte(c), Timestamp: at.Add(time.Duration(i) * 200 * time.Millisecond),
					Value: []byte(fmt.Sprintf(`{"customer": %q, "amount": %d}`, c, i+1))})
			}
			if err := b.Produce(t.Context(), "orders", feed); err != nil {
				t.Fatal(err)
			}
			p, diags := pipeline.Parse("orders.yaml", []byte(src), pipeline.Options{BaseDir: ".", Env: func(k string) (string, bool) {
				return map[string]string{"KAFKA_BROKERS": strings.Join(b.Addrs(), ","), "STATE_DIR": t.TempDir()}[k], true
			}})
			if len(diags) > 0 {
				t.Fatal(diags.Err())
			}
			p.KafkaSource().Start = "earliest"
			defer verifyNoLeaks(t)()
			run, stop, ended := startRun(t, p)
			waitFor(t, 60*time.Second, "both windows emitted without a record after them", func() bool {
				return isClosed(ended) || (b.Stable("orders-per-minute") && len(mustRead(t, b, "orders-per-minute")) >= 2)
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if got := run.Engine.Stats()["agg"].Received; got != int64(len(feed)) {
				t.Errorf("the stage counted %d records received, want %d: ticks are no records", got, len(feed))
			}
			got := map[string]string{}
			for _, r := range readStable(t, b, "orders-per-minute") {
				var w struct {
					Key     string `json:"key"`
					Orders  int    `json:"orders"`
					Revenue int    `json:"revenue"`
				}
				if err := json.Unmarshal(r.Value, &w); err != nil {
					t.Fatal(err)
				}
				if _, twice := got[w.Key]; twice {
					t.Errorf("the window of %s emitted twice", w.Key)
				}
				got[w.Key] = fmt.Sprintf("%d/%d", w.Orders, w.Revenue)
			}
			if want := map[string]string{"c0": "3/9", "c1": "3/12"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("windows %v, want %v", got, want)
			}
		})
	}
}
