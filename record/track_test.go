package record

import (
	"sync"
	"testing"
)

type counter struct {
	mu sync.Mutex
	n  map[uint64]int
}

func (c *counter) Settle(seq uint64) { c.mu.Lock(); c.n[seq]++; c.mu.Unlock() }

func TestTrackerSettlesOnceAfterAllCopies(t *testing.T) {
	c := &counter{n: map[uint64]int{}}
	tr := NewTracker(c, 7)
	tr.Add(99) // a fan-out into 100 copies
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); tr.Done() }()
	}
	wg.Wait()
	if c.n[7] != 1 || tr.Outstanding() != 0 {
		t.Fatalf("settled %d times, %d outstanding", c.n[7], tr.Outstanding())
	}
	defer func() {
		if recover() == nil {
			t.Error("a Done too many must panic: it is an engine bug")
		}
	}()
	tr.Done()
}

func TestCloneIsDeep(t *testing.T) {
	r := &Record{Msg: map[string]any{"a": []any{map[string]any{"b": 1}}}, Headers: []Header{{Key: "h"}}}
	c := r.Clone()
	c.Msg.(map[string]any)["a"].([]any)[0].(map[string]any)["b"] = 2
	c.Headers[0].Key = "x"
	if r.Msg.(map[string]any)["a"].([]any)[0].(map[string]any)["b"] != 1 || r.Headers[0].Key != "h" {
		t.Error("clone shares state with the original")
	}
}
