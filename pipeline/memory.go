package pipeline

import (
	"github.com/pythia-pipe/pythia-pipe/stages"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// MemoryBudget is what the Go runtime holds of a run of the pipeline by its own bounds: the
// soft limit on its memory that pythia-pipe run sets (MemoryLimit, unless GOMEMLIMIT does),
// before the partitions' fetches; 0 when it is not bounded enough to say: its source does not
// bound its records in bytes (max_pending_bytes: 0).
//
// It is the records read and not yet done (max_pending_bytes) and a fetch (fetch_max_bytes)
// four times each (a record is held as read, as decoded and as written; a fetch as received
// and decompressed), 32 MiB for the rest (the Kafka clients, a restore's fetches, the code's
// own), what the stages keep aside of their stores (a quarter of state.cache: a dedupe's key
// filters), and the stores' memory (state.cache) when it is Go's: in a build without cgo, as
// the image's. Without a limit the runtime let the heap grow to twice what was live: a dedupe
// with 10M keys peaked at 260 MB restoring them (64 MiB of cache in a live heap of about
// 100 MB, without cgo) and at 207 MB filling them (with cgo: 47 MB live, 96 MB in use).
func (p *Pipeline) MemoryBudget() int64 {
	k := p.KafkaSource()
	if k == nil || k.MaxPendingBytes <= 0 {
		return 0
	}
	b := 4*k.MaxPendingBytes + 4*k.FetchMaxBytes + 32<<20
	if !p.KeepsState() {
		return b
	}
	b += p.State.CacheBytes / 4 // what stages keep aside (state.Memory.Reserve)
	if state.StoresInGoHeap {
		b += p.State.CacheBytes
	}
	return b
}

// MemoryLimit is the soft limit pythia-pipe run gives the Go runtime for a run of the pipeline
// whose source's topics have partitions partitions (all a member may hold): MemoryBudget and,
// for a pipeline keeping no state, four times fetch_default_bytes a partition: what a paused
// partition may hold beyond the budget, which an at-least-once pipeline's raised collector
// goal (GCPercent) would otherwise press against the limit.
// Without it, at 64 partitions the collector ran without end near an 80 MiB limit (the orders
// example on real Kafka: 90–135k records/s at 6.4–7.2 µs of CPU a record, against 129–166k at
// 4.8–5.2 µs at Go's defaults; with it, 168k at 4.6 µs and 181 MB). A pipeline keeping state
// is left at its budget, as its memory was measured (its stores' cache is most of it).
func (p *Pipeline) MemoryLimit(partitions int) int64 {
	b := p.MemoryBudget()
	if b == 0 || p.KeepsState() {
		return b
	}
	return b + 4*p.KafkaSource().FetchDefaultBytes*int64(partitions)
}

// GCPercent is the garbage collector's goal for a run of the pipeline (GOGC: how far the heap
// grows past what is live before the next collection), as pythia-pipe run sets it unless GOGC
// does. An at-least-once pipeline keeping no state, with a memory budget, holds little live
// (the records in flight, bounded by max_pending_bytes: 20–40 MB of the orders example's at
// 8 MiB), and allocates much per record; Go's default of 100 collected it every 50 ms at 170k
// records/s, a sixth of its CPU. At 300 it collects a third as often, and the soft limit
// (MemoryLimit) still bounds the heap: on real Kafka, 3.7 µs of CPU a record and a peak RSS
// of 125 MB, against 5.5 µs and 128 MB at 100. Exactly-once keeps 100: at 300 it peaked at
// 116 MB rather than 93–98, for CPU its transactions' round trips do not wait on. A pipeline
// keeping state keeps 100: its stores make most of what is live, and the heap would grow by
// three times them.
func (p *Pipeline) GCPercent() int {
	if p.MemoryBudget() > 0 && !p.KeepsState() && !p.ExactlyOnce() {
		return 300
	}
	return 100
}

// KeepsState reports whether a stage keeps a store: a stateful stage, or a table lookup.
func (p *Pipeline) KeepsState() bool {
	if len(p.Stateful()) > 0 {
		return true
	}
	for _, st := range p.Stages {
		if _, ok := stages.TableUserOf(st.Impl); ok {
			return true
		}
	}
	return false
}
