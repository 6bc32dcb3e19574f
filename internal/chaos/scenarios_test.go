//go:build chaos

package chaos

import (
	"context"
	"testing"
	"time"
)

// scenario is one fault the pipeline must live through.
type scenario struct {
	name   string
	what   string        // the fault, for the report
	length time.Duration // how long it lasts, roughly: the feed is paced over it
	modes  []string      // the delivery modes it runs in
	fault  func(ctx context.Context, r *run)
	expect func(r *run, res *result) // what it must show beyond the common checks; nil: nothing
}

var both = []string{atLeastOnce, exactlyOnce}

var scenarios = []scenario{
	{name: "leader-killed", what: "the leader of the busiest output partition killed (-9) three times, 20 s apart, each restarted after 10 s",
		length: 60 * time.Second, modes: both, fault: leaderKilled},
	{name: "group-coordinator-stopped", what: "the group coordinator's broker stopped (SIGSTOP) for 15 s, then continued",
		length: 15 * time.Second, modes: both, fault: groupCoordinatorStopped, expect: saidWhatIsWrong},
	{name: "txn-coordinator-killed", what: "the transaction coordinator's broker killed (-9) while a commit is in flight, restarted after 10 s",
		length: 15 * time.Second, modes: []string{exactlyOnce}, fault: txnCoordinatorKilled},
	{name: "rolling-restart", what: "a rolling restart of the three brokers, one at a time (SIGTERM, start, replicas caught up)",
		length: 90 * time.Second, modes: both, fault: rollingRestart},
	{name: "latency", what: "500 ms of latency each way for 2 s on the busiest output partition's leader (proxy)",
		length: 2 * time.Second, modes: both, fault: latency},
	{name: "reset-storm", what: "every connection to every broker reset once a second for 10 s (proxy)",
		length: 10 * time.Second, modes: both, fault: resetStorm},
	{name: "half-open", what: "the connections to the busiest output partition's leader half-open (nothing answered, no reset) for 30 s (proxy)",
		length: 30 * time.Second, modes: both, fault: halfOpen, expect: saidWhatIsWrong},
	{name: "min-isr-lost", what: "two brokers down (-9) for 20 s: min.insync.replicas 2 cannot be met, then both back",
		length: 25 * time.Second, modes: both, fault: minISRLost, expect: func(r *run, res *result) { writesWaited(r, res); saidWhatIsWrong(r, res) }},
}

// TestChaos runs every scenario in each of its delivery modes, one after another on one
// cluster (CHAOS_ONLY=name runs one).
func TestChaos(t *testing.T) {
	only := envString("CHAOS_ONLY")
	for _, sc := range scenarios {
		if only != "" && only != sc.name {
			continue
		}
		for _, mode := range sc.modes {
			t.Run(sc.name+"/"+mode, func(t *testing.T) { runScenario(t, sc, mode) })
		}
	}
}

func leaderKilled(ctx context.Context, r *run) {
	for i := range 3 {
		at := time.Now()
		leader, topic, p := r.busiestLeader(ctx)
		r.w.kill(r.t, leader)
		r.note("kill %d: broker %d, leader of %s/%d", i+1, leader, topic, p)
		if !hold(ctx, 10*time.Second) {
			return
		}
		r.w.restart(ctx, r.t, leader)
		if i < 2 && !hold(ctx, time.Until(at.Add(20*time.Second))) {
			return
		}
	}
	r.w.waitInSync(ctx, r.t)
}

func groupCoordinatorStopped(ctx context.Context, r *run) {
	c := r.w.groupCoordinator(ctx, r.t, r.group())
	r.note("stopped broker %d, the coordinator of group %s", c, r.group())
	r.w.pause(r.t, c)
	hold(ctx, 15*time.Second)
	r.w.cont(r.t, c)
	r.w.waitInSync(ctx, r.t)
}

func txnCoordinatorKilled(ctx context.Context, r *run) {
	c := r.w.txnCoordinator(ctx, r.t, r.transactionalID())
	// Commits end a transaction every 100 ms: with the coordinator's answers held 300 ms in
	// its proxy, an EndTxn is in flight when it dies.
	r.w.proxies[c].SetLatency(300 * time.Millisecond)
	hold(ctx, time.Second)
	r.w.kill(r.t, c)
	r.w.proxies[c].SetLatency(0)
	r.note("killed broker %d, the coordinator of transactional id %s, with its answers delayed 300 ms", c, r.transactionalID())
	hold(ctx, 10*time.Second)
	r.w.restart(ctx, r.t, c)
	r.w.waitInSync(ctx, r.t)
}

func rollingRestart(ctx context.Context, r *run) {
	for i := range r.w.brokers() {
		began := time.Now()
		r.w.stop(r.t, i)
		r.w.restart(ctx, r.t, i)
		r.w.waitInSync(ctx, r.t)
		r.note("broker %d restarted, replicas in sync after %v", i, time.Since(began).Round(time.Second))
	}
}

func latency(ctx context.Context, r *run) {
	l, _, _ := r.busiestLeader(ctx)
	r.w.proxies[l].SetLatency(500 * time.Millisecond)
	hold(ctx, 2*time.Second)
	r.w.proxies[l].SetLatency(0)
	r.note("latency on broker %d", l)
}

func resetStorm(ctx context.Context, r *run) {
	before := r.w.resets()
	for _, p := range r.w.proxies {
		p.SetResetStorm(time.Second)
	}
	hold(ctx, 10*time.Second)
	for _, p := range r.w.proxies {
		p.SetResetStorm(0)
	}
	r.note("%d connections reset", r.w.resets()-before)
}

func halfOpen(ctx context.Context, r *run) {
	l, _, _ := r.busiestLeader(ctx)
	r.w.proxies[l].SetHalfOpen(true)
	hold(ctx, 30*time.Second)
	r.w.proxies[l].SetHalfOpen(false)
	r.note("half-open: broker %d", l)
}

func minISRLost(ctx context.Context, r *run) {
	down := []int{0, 1}
	for _, i := range down {
		r.w.kill(r.t, i)
	}
	r.note("killed brokers %v", down)
	hold(ctx, 20*time.Second)
	for _, i := range down {
		r.w.restart(ctx, r.t, i)
	}
	r.w.waitInSync(ctx, r.t)
}

// writesWaited: with min.insync.replicas out of reach, writes are refused for a passing
// reason; they must wait, and the feed's own bad records be all the DLQ holds (verify).
func writesWaited(r *run, res *result) {
	if r.mode == atLeastOnce && res.refused == 0 && res.warnings == 0 {
		r.t.Errorf("two brokers down for 20 s, and the pipeline neither counted a refused write nor logged a warning")
	}
}

// saidWhatIsWrong: a fault that holds the pipeline up for 15 s or more must show while it
// lasts — in a warning, in the progress line's waiting_on, in /healthz's answer and in a
// metric of waiting (a sink's or the source's wait, refused writes, aborted transactions).
func saidWhatIsWrong(r *run, res *result) {
	if res.warnings == 0 {
		r.t.Errorf("%s: the pipeline logged no warning while the fault lasted", r.sc.name)
	}
	if res.progressSaid == 0 {
		r.t.Errorf("%s: no progress line said what the pipeline waits on while the fault lasted", r.sc.name)
	}
	if res.healthSaid == 0 {
		r.t.Errorf("%s: /healthz never said what the pipeline waits on while the fault lasted", r.sc.name)
	}
	if res.maxWait == 0 && res.sourceWait == 0 && res.refused == 0 && res.txnAborts == 0 {
		r.t.Errorf("%s: no metric showed the wait (sink_wait_milliseconds, source_wait_seconds, sink_refused_total, transactions_aborted_total)", r.sc.name)
	}
}

// busiestLeader is the broker leading the partition of the run's out topic that holds the
// most records now, and that partition.
func (r *run) busiestLeader(ctx context.Context) (broker int, topic string, partition int32) {
	topic, most := r.topic("out"), int64(-1)
	for p, end := range r.w.b.EndOffsets(topic) {
		if end > most {
			partition, most = p, end
		}
	}
	return r.w.leaderOf(ctx, r.t, topic, partition), topic, partition
}
