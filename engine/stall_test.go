package engine

import (
	"strings"
	"testing"
	"time"
)

// A partition whose commit point does not move for stall_timeout while records are pending is
// stalled: logged with the oldest record's age, flagged in the source's stats (which fail
// /healthz), and cleared once it moves again.
func TestKafkaStalledPartition(t *testing.T) {
	b := brokerWithEvents(t, map[string]int{"events": 500})
	gate := make(chan struct{})
	out := gatedSinks(gate) // a sink that takes nothing until the gate opens: the partition is wedged
	r := runLogged(t, b, "events", "stall_timeout: 300ms", out.Open)
	waitFor(t, 30*time.Second, "the partition to stall", func() bool {
		ps, ok := r.src.Stats().Partitions["events/0"]
		return ok && ps.Stalled
	})
	ps := r.src.Stats().Partitions["events/0"]
	if ps.Pending == 0 || ps.OldestPending < 300*time.Millisecond {
		t.Errorf("stalled with %d pending, the oldest read %v ago", ps.Pending, ps.OldestPending)
	}
	waitFor(t, 10*time.Second, "the stall to be logged", func() bool {
		return strings.Contains(r.logs.String(), `"msg":"partition stalled: its commit point has not moved while records wait; /healthz fails until it moves","topic":"events","partition":0`)
	})
	close(gate)
	waitFor(t, 30*time.Second, "the partition to move again", func() bool {
		return !r.src.Stats().Partitions["events/0"].Stalled && strings.Contains(r.logs.String(), `"msg":"partition moves again","topic":"events","partition":0`)
	})
	r.finish(t, "events")
	expectValues(t, &out.MemorySinks, 0, 500)
}
