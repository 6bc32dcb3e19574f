package exactlyonce

import (
	"testing"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// A Batch counts its records: Drained gets a token each time they are all done.
func TestBatch(t *testing.T) {
	cases := []struct {
		name    string
		add     int
		settle  int
		pending int64
		drained bool
	}{
		{name: "records not done", add: 3, settle: 2, pending: 1},
		{name: "all done", add: 3, settle: 3, drained: true},
		{name: "none read", add: 0, settle: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBatch(&kafkaio.Transaction{})
			b.Add(c.add)
			for range c.settle {
				b.Settle(0)
			}
			if got := b.Pending(); got != c.pending {
				t.Errorf("pending %d, want %d", got, c.pending)
			}
			if got := len(b.Drained()) == 1; got != c.drained {
				t.Errorf("drained %v, want %v", got, c.drained)
			}
		})
	}
}
