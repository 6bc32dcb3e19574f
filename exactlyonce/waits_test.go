package exactlyonce

import (
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/sources"
)

// Transactions aborting in a row are said once they have for 5 s: the pipeline waits for one
// that commits.
func TestAbortsInARowAreSaid(t *testing.T) {
	k := &Source{}
	k.aborting(1, "a write failed: NOT_ENOUGH_REPLICAS")
	var s sources.Stats
	if k.statWait(&s); s.Waiting != "" {
		t.Fatalf("one abort said: %q", s.Waiting)
	}
	k.abortRun.Load().since = time.Now().Add(-6 * time.Second)
	k.aborting(2, "a write failed: NOT_ENOUGH_REPLICAS")
	s = sources.Stats{}
	if k.statWait(&s); s.Waiting != "a transaction that commits: 2 aborted in a row over 6s, the last because a write failed: NOT_ENOUGH_REPLICAS" || s.WaitingFor < 6*time.Second {
		t.Fatalf("said %q, waiting for %v", s.Waiting, s.WaitingFor)
	}
}

// A transaction's end that waits is in the stats from 5 s, with what it waits for and a
// likely cause (the progress line, /healthz and metrics.SayWaits' warnings read them); a short
// wait only in the metric.
func TestTransactionWaitIsSaid(t *testing.T) {
	for _, c := range []struct {
		name   string
		what   string
		waited time.Duration
		stats  string
	}{
		{"not waiting", "", 0, ""},
		{"a short wait", waitRecords, time.Second, ""},
		{"records not done", waitRecords, 6 * time.Second,
			"the open transaction, for 6s, for its records to be done (a stage holds them, or their writes are not acknowledged)"},
		{"the commit unconfirmed", waitEnd, 12 * time.Second,
			"the open transaction, for 12s, for the brokers to confirm its commit: is a broker down, hung or unreachable?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := &Source{}
			if c.what != "" {
				k.waiting.Store(&endWait{what: c.what, since: time.Now().Add(-c.waited)})
			}
			var s sources.Stats
			k.statWait(&s)
			if s.Waiting != c.stats || c.what != "" && s.WaitingFor < c.waited {
				t.Fatalf("stats say %q, waiting for %v; want %q", s.Waiting, s.WaitingFor, c.stats)
			}
			k.waitFor("")
			var after sources.Stats
			if k.statWait(&after); after.WaitingFor != 0 {
				t.Fatalf("waiting for %v after the wait ended", after.WaitingFor)
			}
		})
	}
}
