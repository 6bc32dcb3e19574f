package engine

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
)

// TuneMemory sets the Go runtime for the run, as pythia-pipe run does: a soft memory limit of
// what the pipeline's bounds let it hold (Pipeline.MemoryLimit, with the partitions of the
// source's topics: all a member may hold), so that the collector runs more often as the heap
// nears it rather than let it grow to twice what is live, and the collector's goal
// (Pipeline.GCPercent). GOMEMLIMIT and GOGC, when set, have the last word. The function it
// returns puts back what it changed.
func (r *KafkaRun) TuneMemory(log *slog.Logger) (restore func()) {
	if r.p.MemoryBudget() == 0 {
		return func() {}
	}
	undo := []func(){}
	if os.Getenv("GOMEMLIMIT") == "" {
		limit := r.p.MemoryLimit(r.sourcePartitions())
		was := debug.SetMemoryLimit(limit)
		undo = append(undo, func() { debug.SetMemoryLimit(was) })
		log.Info("soft memory limit", "MiB", limit>>20)
	}
	if os.Getenv("GOGC") == "" {
		was := debug.SetGCPercent(r.p.GCPercent())
		undo = append(undo, func() { debug.SetGCPercent(was) })
	}
	return func() {
		for _, f := range undo {
			f()
		}
	}
}

// sourcePartitions counts the partitions of the source's topics: all a member may hold.
func (r *KafkaRun) sourcePartitions() int {
	n := 0
	for _, topic := range r.p.KafkaSource().Topics {
		if p, err := r.admin.Partitions(context.Background(), topic); err == nil { // checked at connect: it exists
			n += int(p)
		}
	}
	return n
}
