//go:build chaos

package chaos

import (
	"context"
	"strconv"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// result is a run's row in the report.
type result struct {
	scenario, mode string
	recovered      time.Duration // from the fault clearing (and the feed ending) to the group's commit of the input's end
	duplicates     int           // at-least-once: copies beyond the first
	inversions     int           // records of a key out of order by their last copy
	aborted        int           // exactly-once: records of aborted transactions the topics hold (read_committed skips them)
	maxLag         float64       // the most the pipeline said it lagged during the fault
	maxPending     float64       // the most records it said were read and not yet done during the fault
	refused        float64       // writes the brokers refused for a passing reason during the fault (at-least-once)
	txnAborts      float64       // transactions aborted during the fault (exactly-once)
	rebalances     float64
	unhealthy      int     // samples of /healthz that failed during the fault
	healthSaid     int     // samples of /healthz that said more than "ok" during the fault
	healthFailed   string  // what the first that did not answer 200 said
	warnings       int     // warn and error lines the pipeline logged during the fault
	firstWarning   string  // the first one's message
	progressSaid   int     // progress lines that named what the pipeline waits on
	maxWait        float64 // the longest a sink said a partition's writes waited for the broker, in seconds
	sourceWait     float64 // the longest the source said it waited on Kafka, in seconds
	notes          []string
}

// verify reads the run's output topics back and checks them against the feed: at-least-once
// nothing lost, duplicates counted, key order by last copy; exactly-once read_committed,
// nothing lost and nothing twice; in both, the DLQ holds exactly the feed's bad records.
func (r *run) verify(ctx context.Context) result {
	t, b := r.t, r.w.b
	t.Helper()
	res := result{scenario: r.sc.name, mode: r.mode, notes: r.notes}
	if r.mode == exactlyOnce {
		for _, s := range []string{"out", "big", "dlq"} {
			topic := r.topic(s)
			waitUntil(ctx, t, 2*time.Minute, "no transaction open in "+topic, func() bool { return b.Stable(topic) })
		}
	}
	copies := make([]int, r.n)
	for _, sink := range []string{"out", "big", "dlq"} {
		topic := r.topic(sink)
		recs, err := b.Read(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			seq, err := strconv.Atoi(rec.Headers["seq"])
			if err != nil || seq < 0 || seq >= r.n {
				t.Fatalf("%s: a record whose seq header is %q", topic, rec.Headers["seq"])
			}
			if fate := devbroker.OrdersFate(seq); fate != sink {
				t.Fatalf("%s: record %d, whose place is %s (dead-lettered by the fault?)", topic, seq, fate)
			}
			copies[seq]++
		}
		if sink != "dlq" {
			devbroker.ByPartition(recs)
			res.inversions += devbroker.Inversions(recs, true)
		}
		if r.mode == exactlyOnce {
			all, err := b.CountUncommitted(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			res.aborted += all - len(recs)
		}
	}
	var missing, twice []int
	for seq, c := range copies {
		switch {
		case devbroker.OrdersFate(seq) == "dropped":
			if c > 0 {
				t.Fatalf("record %d was filtered out but written %d times", seq, c)
			}
		case c == 0:
			missing = append(missing, seq)
		case c > 1:
			twice = append(twice, seq)
			res.duplicates += c - 1
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d records lost, the first %v; read uncommitted: %s", len(missing), missing[:min(10, len(missing))], r.whereLost(ctx, missing))
	}
	if r.mode == exactlyOnce && len(twice) > 0 {
		t.Fatalf("%d records written more than once (read_committed), the first %v", len(twice), twice[:min(10, len(twice))])
	}
	if res.inversions > 0 {
		t.Fatalf("%d records out of their key's order by their last copy", res.inversions)
	}
	return res
}

// signals gathers what the pipeline said during the fault: its metrics, /healthz and the
// warnings it logged.
func (r *run) signals(res *result) {
	until := r.faultTo.Add(5 * time.Second) // the pipeline still runs then, unless it was stopped sooner
	if until.After(r.termAt) {
		until = r.termAt
	}
	during := r.obs.during(r.faultFrom, until)
	res.maxLag = maxOf(during, "partition_lag")
	res.maxPending = maxOf(during, "records_pending")
	res.maxPending = maxOf(during, "records_pending")
	res.refused = growth(during, "sink_refused_total")
	res.txnAborts = growth(during, "transactions_aborted_total")
	res.rebalances = growth(r.obs.during(r.faultFrom, r.fedAt.Add(recoverWithin)), "rebalances_total")
	res.unhealthy = unhealthy(during)
	res.healthSaid, res.healthFailed = saidHealth(during)
	res.maxWait = maxOf(during, "max:sink_wait_milliseconds") / 1000
	res.sourceWait = maxOf(during, "source_wait_seconds")
	said := toldBetween(r.proc.Output(), r.faultFrom, until)
	res.warnings, res.firstWarning, res.progressSaid = said.warnings, said.first, said.waiting
}
