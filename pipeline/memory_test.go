package pipeline

import (
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/state"
)

// A pipeline has a memory budget from its bounds (for one keeping state, the stores' cache
// counted when it is Go memory); one not bounding its records in bytes has none. Only a
// pipeline keeping no state, at least once, with a budget, lets the collector's heap grow further (GCPercent).
func TestMemoryBudget(t *testing.T) {
	const mib = 1 << 20
	cache := int64(0) // state.cache, 64 MiB by default, when it is Go memory
	if state.StoresInGoHeap {
		cache = 64 * mib
	}
	cases := []struct {
		name, source, stages string
		want                 int64
	}{
		{"dedupe", "{type: kafka, topics: [in]}", "[{name: once, type: dedupe, within: 1h}]", 4*8*mib + 4*4*mib + 32*mib + 16*mib + cache},
		{"smaller budgets", "{type: kafka, topics: [in], max_pending_bytes: 1MiB, fetch_max_bytes: 1MiB}", "[{name: once, type: dedupe, within: 1h}]", 4*mib + 4*mib + 32*mib + 16*mib + cache},
		{"no state", "{type: kafka, topics: [in]}", "[{name: keep, type: filter, when: 'true'}]", 4*8*mib + 4*4*mib + 32*mib},
		{"no state, unbounded", "{type: kafka, topics: [in], max_pending_bytes: 0}", "[{name: keep, type: filter, when: 'true'}]", 0},
		{"exactly-once", "{type: kafka, topics: [in]}\ndelivery: exactly_once", "[{name: keep, type: filter, when: 'true'}]", 4*8*mib + 4*4*mib + 32*mib},
		{"records unbounded in bytes", "{type: kafka, topics: [in], max_pending_bytes: 0}", "[{name: once, type: dedupe, within: 1h}]", 0},
	}
	for _, c := range cases {
		src := "version: 1\nname: t\nsource: " + c.source + "\nstages: " + c.stages + "\nsinks: [{name: out, type: kafka, topic: out}]\n"
		p, diags := Parse("t.yaml", []byte(src), Options{})
		if len(diags) > 0 {
			t.Fatalf("%s: %v", c.name, diags.Err())
		}
		if got := p.MemoryBudget(); got != c.want {
			t.Errorf("%s: budget %d MiB, want %d", c.name, got/mib, c.want/mib)
		}
		wantGC := 100
		if c.want > 0 && strings.HasPrefix(c.name, "no state") {
			wantGC = 300
		}
		if got := p.GCPercent(); got != wantGC {
			t.Errorf("%s: GC percent %d, want %d", c.name, got, wantGC)
		}
	}
}
