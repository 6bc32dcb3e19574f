package exactlyonce

import (
	"fmt"
	"time"

	"github.com/pythia-pipe/pythia-pipe/sources"
)

// A transaction's end waits twice: for its records to be done (through the stages, their
// writes acknowledged), then for the brokers to confirm the commit. A stage that waits for
// its service, or a broker down, hung or cut off, holds it up; the source says so in its
// stats — the progress line, /healthz, the source_wait_seconds metric and the warnings of
// metrics.SayWaits read them — so that what is wrong shows while it lasts, not only once the
// transaction aborts.

// endWait is what the open transaction waits for, and since when.
type endWait struct {
	what  string
	since time.Time
}

const (
	waitRecords = "its records to be done (a stage holds them, or their writes are not acknowledged)"
	waitEnd     = "the brokers to confirm its commit: is a broker down, hung or unreachable?"
)

// waitFor marks the open transaction as waiting for what, from now; nil: not waiting.
func (k *Source) waitFor(what string) {
	if what == "" {
		k.waiting.Store(nil)
		return
	}
	k.waiting.Store(&endWait{what: what, since: time.Now()})
}

// waitNow is what the open transaction waits for, and how long it has (zero: nothing).
func (k *Source) waitNow() (string, time.Duration) {
	w := k.waiting.Load()
	if w == nil {
		return "", 0
	}
	return w.what, time.Since(w.since)
}

// abortRun is transactions aborted in a row: how many, since when, and why the last.
type abortRun struct {
	n     int
	since time.Time
	why   string
}

// aborting counts the n-th transaction aborted in a row, for why.
func (k *Source) aborting(n int, why string) {
	run := &abortRun{n: n, since: time.Now(), why: why}
	if prev := k.abortRun.Load(); prev != nil && n > 1 {
		run.since = prev.since
	}
	k.abortRun.Store(run)
}

// statWait puts in s what the source waits for: the open transaction's end, or, between
// transactions aborted in a row, the next that commits.
func (k *Source) statWait(s *sources.Stats) {
	what, d := k.waitNow()
	s.WaitingFor = d
	if d >= sources.WaitSaid {
		s.Waiting = fmt.Sprintf("the open transaction, for %v, for %s", d.Round(time.Second), what)
	}
	if run := k.abortRun.Load(); run != nil && run.n > 1 {
		since := time.Since(run.since)
		s.WaitingFor = max(s.WaitingFor, since)
		if s.Waiting == "" && since >= sources.WaitSaid {
			s.Waiting = fmt.Sprintf("a transaction that commits: %d aborted in a row over %v, the last because %s", run.n, since.Round(time.Second), run.why)
		}
	}
}
