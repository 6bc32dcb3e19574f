package atleastonce

import (
	"testing"
	"time"
)

func TestLedgerCommitPoint(t *testing.T) {
	cases := []struct {
		name    string
		offsets []int64 // delivered, in order
		settle  []int   // indexes settled, in this order
		want    int64   // commit point after
		pending int
	}{
		{"nothing done", []int64{0, 1, 2}, nil, -1, 3},
		{"prefix", []int64{0, 1, 2}, []int{0, 1}, 2, 1},
		{"hole blocks", []int64{0, 1, 2}, []int{1, 2}, -1, 3},
		{"hole filled", []int64{0, 1, 2}, []int{2, 1, 0}, 3, 0},
		{"offsets with gaps", []int64{10, 13, 20}, []int{0, 1}, 14, 1},
		{"all done with gaps", []int64{5, 9}, []int{1, 0}, 10, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLedger(nil)
			seqs := make([]uint64, len(c.offsets))
			for i, o := range c.offsets {
				seqs[i] = l.Add(o, time.Now(), 0)
			}
			for _, i := range c.settle {
				l.Settle(seqs[i])
			}
			if got := l.CommitPoint(); got != c.want {
				t.Errorf("commit point %d, want %d", got, c.want)
			}
			if got := l.Pending(); got != c.pending {
				t.Errorf("pending %d, want %d", got, c.pending)
			}
		})
	}
}

func TestLedgerLongRunCompacts(t *testing.T) {
	l := NewLedger(nil)
	var prev uint64
	for i := 0; i < 100000; i++ {
		s := l.Add(int64(i), time.Now(), 0)
		if i > 0 {
			l.Settle(prev)
		}
		prev = s
	}
	if l.Pending() != 1 || l.CommitPoint() != 99999 || cap(l.entries) > 1024 {
		t.Errorf("pending %d commit %d cap %d", l.Pending(), l.CommitPoint(), cap(l.entries))
	}
	_, ch := l.Watch()
	l.Settle(prev)
	select {
	case <-ch:
	default:
		t.Error("Changed not signalled")
	}
	l.Close()
	l.Settle(prev) // ignored after close, no panic
}

func TestLedgerStall(t *testing.T) {
	start := time.Unix(1000, 0)
	l := NewLedger(nil)
	if stuck, _ := l.Stall(start.Add(time.Hour)); stuck != 0 {
		t.Fatalf("an empty ledger is stuck for %v", stuck)
	}
	a := l.Add(0, start, 0)
	l.Add(1, start.Add(time.Minute), 0)
	if stuck, oldest := l.Stall(start.Add(10 * time.Minute)); stuck != 10*time.Minute || oldest != 10*time.Minute {
		t.Fatalf("stuck %v, oldest %v; want 10m, 10m", stuck, oldest)
	}
	l.Settle(a)
	now := time.Now()
	stuck, oldest := l.Stall(now.Add(time.Second))
	if stuck < time.Second || stuck > time.Minute || oldest != now.Add(time.Second).Sub(start.Add(time.Minute)) {
		t.Fatalf("after the commit point moved: stuck %v, oldest %v", stuck, oldest)
	}
}

// A ledger holds its records' bytes against the budget until they are done, abandoned, or
// the ledger closes; the budget wakes its waiters once half of it is free.
func TestLedgerBudget(t *testing.T) {
	b := NewBudget(100)
	l := NewLedger(b)
	now := time.Now()
	s1 := l.Add(0, now, 40)
	l.Add(1, now, 30)
	l.Add(2, now, 40)
	if b.Used() != 110 || !b.spent() || b.Peak() != 110 {
		t.Fatalf("used %d peak %d spent %v, want 110 110 true", b.Used(), b.Peak(), b.spent())
	}
	free, changed := b.watch()
	if free {
		t.Fatal("free with 110 of 100 used")
	}
	l.Settle(s1)
	l.Settle(s1) // once only
	if b.Used() != 70 {
		t.Fatalf("used %d after settling 40, want 70", b.Used())
	}
	l.Abandon(1)
	select {
	case <-changed:
	default:
		t.Fatal("half the budget is free and no waiter was woken")
	}
	if b.Used() != 30 {
		t.Fatalf("used %d after abandoning 40, want 30", b.Used())
	}
	l.Close()
	if b.Used() != 0 {
		t.Fatalf("used %d after close, want 0", b.Used())
	}
	if NewBudget(0).spent() {
		t.Fatal("a budget of 0 bounds nothing")
	}
}
