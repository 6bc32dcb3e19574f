package sources

import (
	"testing"
	"time"
)

// A source not yet in its group says so from WaitSaid on, with the likely cause: a member
// that stopped without leaving keeps its partitions until its session_timeout runs out.
func TestJoinWait(t *testing.T) {
	began := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	const dynamic = "the consumer group g to take this member in, for 12s: a member that stopped without leaving (killed?) keeps its partitions until its session_timeout (45s) runs out; with instance_id a restarted member takes its own back at once"
	for _, c := range []struct {
		name     string
		notBegun bool // Run has not begun: nothing is said
		instance string
		stats    Stats
		waited   time.Duration
		want     string
		wantFor  time.Duration
	}{
		{"joined", false, "", Stats{Joined: true}, 12 * time.Second, "", 0},
		{"not begun", true, "", Stats{}, 12 * time.Second, "", 0},
		{"a short join", false, "", Stats{}, 2 * time.Second, "", 2 * time.Second},
		{"a long join", false, "", Stats{}, 12 * time.Second, dynamic, 12 * time.Second},
		{"a long join, static", false, "g-0", Stats{}, 12 * time.Second,
			"the consumer group g to take this member in, for 12s: a member that stopped without leaving (killed?) keeps its partitions until its session_timeout (45s) runs out; is the group coordinator up?", 12 * time.Second},
		{"another wait said first", false, "", Stats{Waiting: "offset commits, failing for 20s", WaitingFor: 20 * time.Second}, 12 * time.Second,
			"offset commits, failing for 20s", 20 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &Config{Group: "g", InstanceID: c.instance, SessionTimeout: 45 * time.Second}
			s := c.stats
			var clock JoinClock
			if !c.notBegun {
				clock.began.Store(began.UnixNano())
			}
			cfg.JoinWait(&s, &clock, began.Add(c.waited))
			if s.Waiting != c.want || s.WaitingFor != c.wantFor {
				t.Fatalf("said %q, waiting for %v; want %q, %v", s.Waiting, s.WaitingFor, c.want, c.wantFor)
			}
		})
	}
}
