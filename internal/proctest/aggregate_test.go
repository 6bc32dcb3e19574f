package proctest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// The aggregate crash test's names: its group, topics, and the internal topics the engine makes
// for its stage (`<group>-<stage>-repartition`, `-changelog`).
const (
	aggGroup       = "orders-per-minute"
	aggStage       = "per-minute"
	aggIn          = "agg-orders"
	aggOut         = "agg-windows"
	aggDLQ         = "agg-late"
	aggRepartition = aggGroup + "-" + aggStage + "-repartition"
	aggPartitions  = 6
)

// Issue 28's "correctness against a reference", as processes: orders keyed by order id,
// aggregated per customer (repartitioned) in 1-minute tumbling windows, exactly-once, by three
// members (each its own instance_id and state dir) through three SIGKILLs and a rebalance —
// one member killed for good while the first phase flows, a fourth added, another killed and
// restarted as windows are emitted, and the added one killed as windows are emitted and
// restarted with its state dir deleted — then read read_committed: every window once, with the
// count and sum a separate program (aggref) computes from the feed; every late order in the DLQ
// once; nothing else.
//
// Whether an order is late depends on its repartition partition's stream time, which depends on
// how the records of the source partitions interleave there: a killed member's partitions stall
// while the others go on. So the feed comes in phases, each produced once every record of the
// one before is processed (the group's offsets at the end of the input and the repartition
// topic), and its times are chosen so that no outcome depends on the interleaving within a
// phase: the grace (12m) is at least a phase's span plus its jitter (10m + 2m), so no window
// closes within a phase; the phases are 30m apart, so a phase's first record in a partition
// closes all of the phase before's windows there (windows close, and are emitted, during the
// run); a late order's time is before what its customer's orders of the previous phase brought.
// The last phase, an order per customer, closes the others' windows; its own stay open (no
// idle_close: it would move stream times by the wall clock). The reference checks that each
// outcome is certain whatever the interleaving, and refuses the feed otherwise.
func TestAggregateCrash(t *testing.T) {
	n := feedSize(t, "AGG_RECORDS", 30_000)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 28))
	// Hours in the past: a real broker refuses timestamps an hour ahead (window ends are the
	// outputs' timestamps), and retention would delete days-old ones.
	t0 := time.Now().Add(-4 * time.Hour).Truncate(time.Hour).UnixMilli()
	phases := aggFeed(n, t0, rng)
	exp := aggReference(t, phases)
	t.Logf("feed: %d orders in %d phases and %d closing ones; the reference: %d windows, %d late (seed %d)",
		n, aggPhases, len(phases[aggPhases]), len(exp.windows), len(exp.late), seed)
	if len(exp.windows) == 0 || len(exp.late) == 0 {
		t.Fatal("the reference expects no windows or no late orders: the test shows nothing")
	}
	slack := 2*time.Minute + time.Duration(n/2000)*time.Second

	b := newBroker(t)
	for _, topic := range []string{aggIn, aggOut, aggDLQ} {
		if err := b.CreateTopic(topic, aggPartitions); err != nil {
			t.Fatal(err)
		}
	}
	file := aggPipeline(t)
	ends := func(topic string) (n int64) {
		for _, end := range b.EndOffsets(topic) {
			n += end
		}
		return n
	}
	done := func() bool { return b.CaughtUp(aggGroup, aggIn) && b.CaughtUp(aggGroup, aggRepartition) }
	produceOrders := func(orders []aggOrder) {
		t.Helper()
		recs := make([]devbroker.Record, 0, len(orders))
		for _, o := range orders {
			recs = append(recs, devbroker.Record{Key: []byte(o.OrderID),
				Value: fmt.Appendf(nil, `{"order_id":%q,"customer_id":%q,"amount":%d,"ts":%d}`, o.OrderID, o.CustomerID, o.Amount, o.TS)})
		}
		if err := b.Produce(context.Background(), aggIn, recs); err != nil {
			t.Fatal(err)
		}
	}
	produce := func(k int) { t.Helper(); produceOrders(phases[k]) }
	barrier := func(k int) {
		t.Helper()
		waitFor(t, slack, fmt.Sprintf("every record of phase %d processed", k), done)
	}

	type member struct {
		id, dir string
		p       *testproc.Proc
	}
	var all []*testproc.Proc // every process, in order, for their restores
	run := func(m *member, name string) {
		m.p = startEnv(t, b, name, []string{"INSTANCE_ID=" + m.id, "STATE_DIR=" + m.dir}, "run", file)
		all = append(all, m.p)
	}
	members := make([]*member, 4)
	for i := range members {
		members[i] = &member{id: fmt.Sprintf("agg-%d", i), dir: t.TempDir()}
	}
	kill := func(m *member, k, phase int, when string) {
		t.Helper()
		if !m.p.Running() {
			t.Fatalf("%s exited before it was killed", m.p.Name)
		}
		if k > 1 && done() { // kill 1 comes before the rest of its phase is produced
			t.Fatalf("kill %d: phase %d was processed before the kill", k, phase)
		}
		m.p.Signal(t, syscall.SIGKILL)
		m.p.Wait(t, 10*time.Second)
		t.Logf("kill %d: %s %s, at %d repartitioned records and %d window records written (aborted ones included)", k, m.p.Name, when, ends(aggRepartition), ends(aggOut))
	}
	// emitting waits until windows are being written after phase k is produced: the first
	// records of each partition close the windows of the phase before.
	emitting := func(k int, m *member) {
		t.Helper()
		before := ends(aggOut)
		produce(k)
		waitFor(t, slack, fmt.Sprintf("windows written in phase %d", k), func() bool { return ends(aggOut) > before || !m.p.Running() })
	}
	began := time.Now()

	for i := range 3 {
		run(members[i], fmt.Sprintf("m%d", i))
	}
	waitFor(t, 90*time.Second, "three members sharing the partitions", func() bool { return sharingIn(b, aggGroup, 3) })
	// Phase 0: m1 killed for good once every member has committed some of its work (each
	// repartition partition's offsets have moved: m1's stores have changes on their changelogs,
	// which whoever takes its partitions restores) and a quarter of the phase is processed; once
	// m1 has left the group, m3 joins. Half the phase comes before the kill and half after:
	// produced at once, a loaded machine's transactions, each as large as max_pending, could
	// commit all of it before the kill.
	half := len(phases[0]) / 2
	produceOrders(phases[0][:half])
	waitFor(t, slack, "a quarter of phase 0 processed, every repartition partition begun", func() bool {
		committed, sum := b.Committed(aggGroup, aggRepartition), int64(0)
		for p := range int32(aggPartitions) {
			if committed[p] == 0 {
				return !members[1].p.Running()
			}
			sum += committed[p]
		}
		return sum >= int64(len(phases[0])/4) || !members[1].p.Running()
	})
	kill(members[1], 1, 0, "for good")
	produceOrders(phases[0][half:])
	waitFor(t, 90*time.Second, "the group to share the partitions without m1", func() bool { return sharingIn(b, aggGroup, 2) })
	run(members[3], "m3")
	waitFor(t, 90*time.Second, "the group to take m3 in", func() bool {
		return strings.Contains(members[3].p.Output(), `"msg":"partitions assigned"`) && sharingIn(b, aggGroup, 3)
	})
	barrier(0)
	// Phase 1: m0 killed as phase 0's windows are written, and restarted.
	emitting(1, members[0])
	kill(members[0], 2, 1, "as windows are written")
	run(members[0], "m0 again")
	barrier(1)
	produce(2)
	barrier(2)
	// Phase 3: m3 killed as phase 2's windows are written, and restarted without its state.
	emitting(3, members[3])
	kill(members[3], 3, 3, "as windows are written")
	if err := os.RemoveAll(members[3].dir); err != nil {
		t.Fatal(err)
	}
	run(members[3], "m3 again, its state dir deleted")
	barrier(3)
	for k := 4; k <= aggPhases; k++ {
		produce(k)
		barrier(k)
	}
	terminate(t, members[0].p, members[2].p, members[3].p)
	t.Logf("%d orders through 3 kills, a member gone and one added, in %v", n, time.Since(began).Round(time.Millisecond))

	var restored, rebuilt, held int
	for _, p := range all {
		held += strings.Count(p.Output(), "changelog has a transaction open")
		for _, r := range logRestores(t, p) {
			restored++
			if p == members[3].p && r.From == 0 && !r.Clean && r.Records > 0 {
				rebuilt++
			}
		}
	}
	t.Logf("%d stores restored in all, %d rebuilt from the changelog by m3 after its state dir was deleted; a restore waited for a transaction open in its changelog (logged %d times)", restored, rebuilt, held)
	if rebuilt == 0 {
		t.Error("m3 rebuilt no store from its changelog after its state dir was deleted")
	}
	verifyAggregate(t, b, exp)
}

// verifyAggregate reads the windows and the DLQ (read_committed) and checks them against the
// reference: each window once, with its count and sum; each late order dead-lettered once, as
// late; the group's offsets at the end of the input.
func verifyAggregate(t *testing.T, b *devbroker.Broker, exp aggExpected) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, topic := range []string{aggOut, aggDLQ} {
		waitFor(t, 2*time.Minute, "no transaction open in "+topic, func() bool { return b.Stable(topic) })
	}
	out, err := b.Read(ctx, aggOut)
	if err != nil {
		t.Fatal(err)
	}
	got := map[aggWindowKey][2]int64{}
	var twice, wrong int
	for _, r := range out {
		var w struct {
			Key         string    `json:"key"`
			WindowStart time.Time `json:"window_start"`
			WindowEnd   time.Time `json:"window_end"`
			Orders      int64     `json:"orders"`
			Revenue     int64     `json:"revenue"`
		}
		if err := json.Unmarshal(r.Value, &w); err != nil || string(r.Key) != w.Key || w.WindowEnd.Sub(w.WindowStart) != time.Minute {
			t.Fatalf("%s: %s keyed %q (%v)", aggOut, r.Value, r.Key, err)
		}
		k := aggWindowKey{w.Key, w.WindowStart.UnixMilli()}
		if _, ok := got[k]; ok {
			if twice++; twice <= 10 {
				t.Errorf("window %s@%s emitted twice (read_committed)", k.customer, w.WindowStart.Format(time.RFC3339))
			}
		}
		got[k] = [2]int64{w.Orders, w.Revenue}
		if want, ok := exp.windows[k]; !ok || want != got[k] {
			if wrong++; wrong <= 10 {
				t.Errorf("window %s@%s: orders and revenue %v; the reference says %v (a window of it: %v)", k.customer, w.WindowStart.Format(time.RFC3339), got[k], want, ok)
			}
		}
	}
	var missing int
	for k, want := range exp.windows {
		if _, ok := got[k]; !ok {
			if missing++; missing <= 10 {
				t.Errorf("window %s@%s (orders and revenue %v) never emitted", k.customer, time.UnixMilli(k.start).UTC().Format(time.RFC3339), want)
			}
		}
	}
	if twice+wrong+missing > 0 {
		t.Errorf("windows: %d emitted twice, %d wrong or unknown, %d missing, of %d", twice, wrong, missing, len(exp.windows))
	}

	dead, err := b.Read(ctx, aggDLQ)
	if err != nil {
		t.Fatal(err)
	}
	copies := map[string]int{}
	var bad int
	for _, r := range dead {
		var o struct {
			OrderID string `json:"order_id"`
		}
		_ = json.Unmarshal(r.Value, &o)
		reason := r.Headers[dlq.HeaderError]
		if copies[o.OrderID]++; !exp.late[o.OrderID] || copies[o.OrderID] > 1 || !strings.HasPrefix(reason, "late:") || r.Headers[dlq.HeaderStage] != aggStage {
			if bad++; bad <= 10 {
				t.Errorf("%s: order %q (copy %d, late: %v) dead-lettered by stage %q for %q", aggDLQ, o.OrderID, copies[o.OrderID], exp.late[o.OrderID], r.Headers[dlq.HeaderStage], reason)
			}
		}
	}
	for id := range exp.late {
		if copies[id] == 0 {
			if bad++; bad <= 10 {
				t.Errorf("late order %s not in %s", id, aggDLQ)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d records, %d wrong or missing; %d late orders expected", aggDLQ, len(dead), bad, len(exp.late))
	}

	for _, topic := range []string{aggOut, aggDLQ} {
		all, err := b.CountUncommitted(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		read := map[string]int{aggOut: len(out), aggDLQ: len(dead)}[topic]
		t.Logf("%s: %d records (read_committed), %d of aborted transactions skipped", topic, read, all-read)
	}
	committed, ends := b.Committed(aggGroup, aggIn), b.EndOffsets(aggIn)
	for p, end := range ends {
		if committed[p] != end {
			t.Errorf("%s partition %d: committed offset %d, log end %d", aggIn, p, committed[p], end)
		}
	}
	t.Logf("%d windows each once with the reference's count and sum; %d late orders each in the DLQ once", len(got), len(copies))
}
