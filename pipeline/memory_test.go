package pipeline

import (
	"testing"

	"github.com/pythia-pipe/pythia-pipe/state"
)

// A pipeline has a memory budget from its bounds (for one keeping state, the stores' cache
// counted when it is Go memory); one not bounding its records in bytes has none. The limit
// run sets adds, to a budget without state, the fetches of the partitions a member may hold
// (fetch_default_bytes, 256 KiB, four times each); only an at-least-once pipeline without
// state has its collector's goal raised.
func TestMemoryBudget(t *testing.T) {
	const mib = 1 << 20
	cache := int64(0) // state.cache, 64 MiB by default, when it is Go memory
	if state.StoresInGoHeap {
		cache = 64 * mib
	}
	const fetches64 = 64 * 4 * 256 << 10 // at 64 partitions
	cases := []struct {
		name, source, stages string
		budget, limit64      int64
		gc                   int
	}{
		{"dedupe", "{type: kafka, topics: [in]}", "[{name: once, type: dedupe, within: 1h}]",
			4*8*mib + 4*4*mib + 32*mib + 16*mib + cache, 4*8*mib + 4*4*mib + 32*mib + 16*mib + cache, 100},
		{"smaller budgets", "{type: kafka, topics: [in], max_pending_bytes: 1MiB, fetch_max_bytes: 1MiB}", "[{name: once, type: dedupe, within: 1h}]",
			4*mib + 4*mib + 32*mib + 16*mib + cache, 4*mib + 4*mib + 32*mib + 16*mib + cache, 100},
		{"no state", "{type: kafka, topics: [in]}", "[{name: keep, type: filter, when: 'true'}]",
			4*8*mib + 4*4*mib + 32*mib, 4*8*mib + 4*4*mib + 32*mib + fetches64, 300},
		{"no state, unbounded", "{type: kafka, topics: [in], max_pending_bytes: 0}", "[{name: keep, type: filter, when: 'true'}]", 0, 0, 100},
		{"exactly-once", "{type: kafka, topics: [in]}\ndelivery: exactly_once", "[{name: keep, type: filter, when: 'true'}]",
			4*8*mib + 4*4*mib + 32*mib, 4*8*mib + 4*4*mib + 32*mib + fetches64, 100},
		{"records unbounded in bytes", "{type: kafka, topics: [in], max_pending_bytes: 0}", "[{name: once, type: dedupe, within: 1h}]", 0, 0, 100},
	}
	for _, c := range cases {
		src := "version: 1\nname: t\nsource: " + c.source + "\nstages: " + c.stages + "\nsinks: [{name: out, type: kafka, topic: out}]\n"
		p, diags := Parse("t.yaml", []byte(src), Options{})
		if len(diags) > 0 {
			t.Fatalf("%s: %v", c.name, diags.Err())
		}
		if got := p.MemoryBudget(); got != c.budget {
			t.Errorf("%s: budget %d MiB, want %d", c.name, got/mib, c.budget/mib)
		}
		if got := p.MemoryLimit(64); got != c.limit64 {
			t.Errorf("%s: limit at 64 partitions %d MiB, want %d", c.name, got/mib, c.limit64/mib)
		}
		if got := p.GCPercent(); got != c.gc {
			t.Errorf("%s: GC percent %d, want %d", c.name, got, c.gc)
		}
	}
}
