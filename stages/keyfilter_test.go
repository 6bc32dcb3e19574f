package stages

import (
	"fmt"
	"testing"
)

// A key filter never says no of a key it was given, grows by parts as keys come, and says
// "may" of few others.
func TestKeyFilter(t *testing.T) {
	cases := []struct {
		name     string
		keys     int
		parts    int
		maxFalse float64 // the share of other keys it may say "may" of
	}{
		{"empty", 0, 1, 0},
		{"its first part full", keyFilterFirst, 1, 0.04},
		{"grown twice", 4 * keyFilterFirst, 3, 0.08},
		{"half its first part", keyFilterFirst / 2, 1, 0.01},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newKeyFilter(keyFilterFirst)
			for i := range c.keys {
				if f.full() {
					want := keyFilterPartBytes(2*f.parts[len(f.parts)-1].capacity) + f.bytes()
					f.grow()
					if f.bytes() != want {
						t.Fatalf("grown to %d bytes, want %d", f.bytes(), want)
					}
				}
				f.add(fmt.Appendf(nil, "kpay-%09d", i))
			}
			for i := range c.keys {
				if k := fmt.Appendf(nil, "kpay-%09d", i); !f.mayHold(k) {
					t.Fatalf("said no of %s, given", k)
				}
			}
			if len(f.parts) != c.parts {
				t.Errorf("%d parts for %d keys, want %d", len(f.parts), c.keys, c.parts)
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
