package proctest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// The aggregate crash test's pipeline, feed and reference (TestAggregateCrash runs them).

// The feed's time: phases of aggSpan of event time each, aggStep apart, records out of order by
// up to aggJitter; the grace is more than a phase's span plus the jitter, and less than the
// step minus the span, a window and the jitter (see TestAggregateCrash).
const (
	aggPhases = 5 // of orders; one more, of one order per customer, closes their windows
	aggSpan   = 10 * time.Minute
	aggStep   = 30 * time.Minute
	aggJitter = 2 * time.Minute
	aggGrace  = 12 * time.Minute
)

// aggPipeline: orders keyed by order id, aggregated per customer (so repartitioned) in 1-minute
// tumbling windows by their own time (msg.ts, Unix ms), exactly-once, late orders to the DLQ.
// Each process reads its instance_id and state dir from ${INSTANCE_ID} and ${STATE_DIR}.
func aggPipeline(t testing.TB) string {
	t.Helper()
	text := `version: 1
name: orders-agg
delivery: exactly_once
kafka:
  brokers: ${KAFKA_BROKERS}
` + clientField + `
source:
  type: kafka
  topics: [` + aggIn + `]
  group: ` + aggGroup + `
  start: earliest
  session_timeout: 6s
  heartbeat_interval: 500ms
  rebalance_timeout: 30s
  transaction_timeout: 5s
  drain_timeout: 15s
  commit_interval: 200ms
  max_pending: 2000
  instance_id: ${INSTANCE_ID}
state:
  dir: ${STATE_DIR}
stages:
  - name: parse
    type: decode
    schema: {order_id: string, customer_id: string, amount: int, ts: int}
  - name: ` + aggStage + `
    type: aggregate
    key: msg.customer_id
    time: msg.ts
    window: {tumbling: 1m}
    grace: ` + aggGrace.String() + `
    late: dlq
    emit: final
    aggregates:
      orders: count()
      revenue: sum(msg.amount)
sinks:
  - name: out
    type: kafka
    topic: ` + aggOut + `
dlq:
  type: kafka
  topic: ` + aggDLQ + `
`
	path := filepath.Join(t.TempDir(), "orders-agg.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// aggOrder is an order of the feed: its body (amount in cents, so that sums are exact) and the
// phase it is produced in, which the reference reads too.
type aggOrder struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Amount     int64  `json:"amount"`
	TS         int64  `json:"ts"`
	Phase      int    `json:"phase"`
}

// aggFeed is n orders in aggPhases phases, then a phase of one order per customer. Phase k's
// orders have event times from T_k - aggJitter to T_k + aggSpan (T_k = t0 + k·aggStep), in order
// but for a jitter, and each phase opens with one order of every customer. About one in 200 of
// the orders of phases 1 on is late: its event time is between an hour before t0 and
// aggJitter+aggGrace+1m before the previous phase began, where its customer's own orders of that
// phase already took its partition's stream time past its window's end plus grace.
func aggFeed(n int, t0 int64, rng *rand.Rand) [][]aggOrder {
	customers := min(max(n/400, 50), 1000)
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	lateP := 0.005 * float64(aggPhases) / float64(aggPhases-1)
	phases := make([][]aggOrder, aggPhases+1)
	seq := 0
	for k := range aggPhases {
		m := n / aggPhases
		if k == aggPhases-1 {
			m = n - seq
		}
		tk := t0 + int64(k)*ms(aggStep)
		for j := range m {
			o := aggOrder{OrderID: fmt.Sprintf("o-%07d", seq), CustomerID: fmt.Sprintf("c-%04d", rng.IntN(customers)),
				Amount: 1 + rng.Int64N(100_000), TS: tk + int64(j)*ms(aggSpan)/int64(m) - rng.Int64N(ms(aggJitter)), Phase: k}
			if j < customers {
				o.CustomerID = fmt.Sprintf("c-%04d", j)
			} else if k > 0 && rng.Float64() < lateP {
				latest := tk - ms(aggStep) - ms(aggJitter+aggGrace+time.Minute)
				from := t0 - ms(time.Hour)
				o.TS = from + rng.Int64N(latest-from)
			}
			phases[k] = append(phases[k], o)
			seq++
		}
	}
	end := t0 + int64(aggPhases)*ms(aggStep)
	for c := range customers {
		phases[aggPhases] = append(phases[aggPhases], aggOrder{OrderID: fmt.Sprintf("close-%04d", c), CustomerID: fmt.Sprintf("c-%04d", c),
			Amount: 1, TS: end, Phase: aggPhases})
	}
	return phases
}

// aggWindowKey names a window: its customer and start (Unix ms).
type aggWindowKey struct {
	customer string
	start    int64
}

// aggExpected is what the reference says the run must write: each window's count and sum,
// and the late orders.
type aggExpected struct {
	windows map[aggWindowKey][2]int64
	late    map[string]bool
}

// aggReference writes the feed to a file and runs the reference, a program of its own
// (./aggref), on it.
func aggReference(t *testing.T, phases [][]aggOrder) aggExpected {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "feed.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, phase := range phases {
		for _, o := range phase {
			if err := enc.Encode(o); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	bin, err := testproc.BuildCommand("../..", "./internal/proctest/aggref", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-window", "1m", "-grace", aggGrace.String(), path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the reference: %v\n%s", err, stderr.String())
	}
	exp := aggExpected{windows: map[aggWindowKey][2]int64{}, late: map[string]bool{}}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 5 && f[0] == "window":
			var v [3]int64
			for i := range v {
				if v[i], err = strconv.ParseInt(f[2+i], 10, 64); err != nil {
					t.Fatalf("the reference wrote %q", line)
				}
			}
			exp.windows[aggWindowKey{f[1], v[0]}] = [2]int64{v[1], v[2]}
		case len(f) == 2 && f[0] == "late":
			exp.late[f[1]] = true
		default:
			t.Fatalf("the reference wrote %q", line)
		}
	}
	return exp
}
