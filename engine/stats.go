package engine

import "sync/atomic"

// counters are the engine's per-node counts, kept with atomics and read by Stats.
type counters struct {
	kind                               string       // "stage", "sink" or "dlq"
	received, emitted, dropped, errors atomic.Int64 // stages
	acked, failed                      atomic.Int64 // sinks
	deadLettered                       atomic.Int64 // records this node sent to the DLQ
}

// NodeStats is a snapshot of one stage's or sink's counters.
type NodeStats struct {
	Kind         string // "stage", "sink" or "dlq"
	Received     int64  // records a stage processed
	Emitted      int64  // records a stage emitted (before fan-out to targets)
	Dropped      int64  // records a stage filtered out
	Errors       int64  // records a stage failed
	Acked        int64  // records a sink's broker acknowledged
	Failed       int64  // records a sink could not write (dead-lettered or fatal)
	DeadLettered int64  // records this node sent to the DLQ
	// Stage are a stage's or sink's own numbers: retries, cache_hits, cache_misses,
	// breaker_state; refused and rewritten for sinks.
	Stage map[string]int64
}

func (c *counters) snapshot() NodeStats {
	return NodeStats{Kind: c.kind, Received: c.received.Load(), Emitted: c.emitted.Load(), Dropped: c.dropped.Load(), Errors: c.errors.Load(),
		Acked: c.acked.Load(), Failed: c.failed.Load(), DeadLettered: c.deadLettered.Load()}
}

// Stats is a snapshot of the engine's counters by stage or sink name ("dlq" for the DLQ).
type Stats map[string]NodeStats
