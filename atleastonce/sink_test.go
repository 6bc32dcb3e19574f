package atleastonce

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// Every number a Kafka sink reports is described by its type, so that the metrics export it.
func TestSinkNumbersDescribed(t *testing.T) {
	described := map[string]bool{}
	kafka := sinks.Registry()["kafka"]
	for _, c := range kafka.Counters {
		described[c.Key] = true
	}
	s := &Sink{guard: newGuard(true)}
	for key := range s.Counters() {
		if !described[key] {
			t.Errorf("the Kafka sink reports %q, which its type does not describe", key)
		}
	}
	if len(s.Counters()) != len(kafka.Counters) {
		t.Errorf("the kafka type describes %d numbers, the sink reports %d", len(kafka.Counters), len(s.Counters()))
	}
}

// A sink says when the broker leaves a partition's writes unanswered or refuses them, at most
// once per logEvery, and once when it takes them again.
func TestSinkSaysWhenWritesWait(t *testing.T) {
	var logged bytes.Buffer
	r := newGuardRun(t)
	s := &Sink{Output: &sinks.Output{Target: sinks.Target{Name: "out"}, Log: slog.New(slog.NewTextHandler(&logged, nil))}, guard: r.g}
	at := time.Now()
	var said refusalLog
	look := func(after time.Duration) string {
		logged.Reset()
		s.sayWaiting(&said, at.Add(after))
		return logged.String()
	}
	r.write(2)
	if got := look(0); got != "" {
		t.Fatalf("said at once: %s", got)
	}
	// sayWaiting measures with the clock: the partition's wait starts at the look above.
	r.g.mu.Lock()
	r.g.parts[partKey{"out", 0}].movedAt = time.Now().Add(-11 * time.Second)
	r.g.mu.Unlock()
	settleAll := func() { // 1 comes back, 0 is probed and taken, 1 is written again after it
		for range 3 {
			r.ack()
			r.resend()
		}
	}
	for _, c := range []struct {
		name  string
		after time.Duration
		step  func()
		says  string
	}{
		{"unanswered for 11 s", 11 * time.Second, func() {}, "has not acknowledged a write of a partition"},
		{"refused, but said 1 s ago", 12 * time.Second, r.refuse, ""},
		{"refused", 21 * time.Second, func() {}, "the broker refuses writes"},
		{"taken again", 40 * time.Second, settleAll, "the broker takes writes again"},
		{"nothing more to say", 60 * time.Second, func() {}, ""},
	} {
		c.step()
		if got := look(c.after); c.says == "" && got != "" || !strings.Contains(got, c.says) {
			t.Fatalf("%s: said %q, want %q", c.name, got, c.says)
		}
	}
}

// Commits failing in a row are in the stats: how long at once, what and why from 5 s.
func TestCommitFailuresAreSaid(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name    string
		failing *commitFailure
		waited  time.Duration
		says    string
	}{
		{"committing", nil, 0, ""},
		{"failing for 2 s", &commitFailure{since: now.Add(-2 * time.Second), err: errRefused}, 2 * time.Second, ""},
		{"failing for 7 s", &commitFailure{since: now.Add(-7 * time.Second), err: errRefused}, 7 * time.Second,
			"offset commits, failing for 7s (is the group coordinator down or hung?): NOT_ENOUGH_REPLICAS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := &Source{}
			k.failing.Store(c.failing)
			var s sources.Stats
			k.statWait(&s, now)
			if s.WaitingFor != c.waited || s.Waiting != c.says {
				t.Fatalf("waiting %v: %q; want %v: %q", s.WaitingFor, s.Waiting, c.waited, c.says)
			}
		})
	}
}
