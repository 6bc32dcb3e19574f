package engine

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// TuneMemory sets the Go runtime for a run of p whose source's topics have partitions
// partitions, as pythia-pipe run does: a soft memory limit of what p's bounds let it hold
// (Pipeline.MemoryLimit), so that the collector runs more often as the heap nears it rather
// than let it grow to twice what is live, and the collector's goal (Pipeline.GCPercent).
// GOMEMLIMIT and GOGC, when set, have the last word. The function it returns puts back what
// it changed.
func TuneMemory(p *pipeline.Pipeline, partitions int, log *slog.Logger) (restore func()) {
	limit := p.MemoryLimit(partitions)
	if limit == 0 {
		return func() {}
	}
	undo := []func(){}
	if os.Getenv("GOMEMLIMIT") == "" {
		was := debug.SetMemoryLimit(limit)
		undo = append(undo, func() { debug.SetMemoryLimit(was) })
		log.Info("soft memory limit", "MiB", limit>>20)
	}
	if os.Getenv("GOGC") == "" {
		was := debug.SetGCPercent(p.GCPercent())
		undo = append(undo, func() { debug.SetGCPercent(was) })
	}
	return func() {
		for _, f := range undo {
			f()
		}
	}
}
