package stages

import (
	"fmt"
	"testing"
)

// A key filter never says no of a key it was given, and says "may" of few others.
func TestKeyFilter(t *testing.T) {
	cases := []struct {
		name     string
		capacity int
		keys     int
		maxFalse float64 // the share of other keys it may say "may" of
	}{
		{"empty", 1000, 0, 0},
		{"at capacity", 100_000, 100_000, 0.04},
		{"half full", 100_000, 50_000, 0.01},
		{"smaller than a block", 10, 10, 0.01},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newKeyFilter(c.capacity)
			for i := range c.keys {
				f.add(fmt.Appendf(nil, "kpay-%09d", i))
			}
			for i := range c.keys {
				if k := fmt.Appendf(nil, "kpay-%09d", i); !f.mayHold(k) {
					t.Fatalf("said no of %s, given", k)
				}
			}
			if f.full() != (c.keys >= c.capacity) {
				t.Errorf("full: %v with %d keys of %d", f.full(), c.keys, c.capacity)
			}
			const others = 100_000
			yes := 0
			for i := range others {
				if f.mayHold(fmt.Appendf(nil, "kother-%09d", i)) {
					yes++
				}
			}
			if share := float64(yes) / others; share > c.maxFalse {
				t.Errorf("said may of %.2f%% of keys never given, want at most %.2f%%", 100*share, 100*c.maxFalse)
			}
		})
	}
}
