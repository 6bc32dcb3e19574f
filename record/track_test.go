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
	cases := []struct {
		name string
		make func(Settler) *Tracker
	}{
		{"NewTracker", func(s Settler) *Tracker { return NewTracker(s, 7) }},
		{"Tracked", func(s Settler) *Tracker {
			rec := Tracked(Record{Offset: 3}, s, 7)
			if rec.Offset != 3 {
				t.Fatalf("Tracked lost the record: %+v", rec)
			}
			return rec.Track
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { settlesOnce(t, c.make) })
	}
}

func settlesOnce(t *testing.T, newTracker func(Settler) *Tracker) {
	c := &counter{n: map[uint64]int{}}
	tr := newTracker(c)
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
