package exactlyonce

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/sources"
)

// syncBuffer is a log the test reads while the source writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

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

// A transaction's end that waits is said: in the stats from 5 s (the progress line and
// /healthz read them), in a warning from 10 s; a short wait only in the metric.
func TestTransactionWaitIsSaid(t *testing.T) {
	for _, c := range []struct {
		name    string
		what    string
		waited  time.Duration
		stats   string
		warning string
	}{
		{"not waiting", "", 0, "", ""},
		{"a short wait", waitWrites, time.Second, "", ""},
		{"writes unanswered", waitWrites, 6 * time.Second, "the open transaction, for its records' writes to be acknowledged (6s)", ""},
		{"the commit unconfirmed", waitEnd, 12 * time.Second, "the open transaction, for the brokers to confirm its commit (12s)",
			"for the brokers to confirm its commit: is a broker down, hung or unreachable?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log syncBuffer
			k := &Source{log: slog.New(slog.NewTextHandler(&log, nil))}
			if c.what != "" {
				k.waiting.Store(&endWait{what: c.what, since: time.Now().Add(-c.waited)})
			}
			var s sources.Stats
			k.statWait(&s)
			if s.Waiting != c.stats || c.what != "" && s.WaitingFor < c.waited {
				t.Fatalf("stats say %q, waiting for %v; want %q", s.Waiting, s.WaitingFor, c.stats)
			}
			if c.warning == "" {
				return
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); k.sayWaits(ctx) }()
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(log.String(), c.warning) {
				if time.Now().After(deadline) {
					t.Fatalf("no warning within 5 s; logged %q", log.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done
			k.waitFor("")
			var after sources.Stats
			if k.statWait(&after); after.WaitingFor != 0 {
				t.Fatalf("waiting for %v after the wait ended", after.WaitingFor)
			}
		})
	}
}
