package atleastonce

import (
	"sync"
	"sync/atomic"
)

// Budget bounds the weight of the records read and not yet done (recordSize: their bytes plus
// RecordOverhead), across every partition of the process (max_pending_bytes): max_pending
// bounds a partition in records, which says nothing of memory when records are large or
// partitions many. A claim takes a record's weight as it reads it, and its partition is
// paused while the budget is spent (see claimReader.pace); the ledger gives it back when the
// record is done, or when the claim ends. Taking and giving are atomic adds: they happen for
// every record, from every claim and every sink.
type Budget struct {
	max  int64 // 0: no bound
	used atomic.Int64
	peak atomic.Int64

	mu      sync.Mutex
	changed chan struct{} // closed when used falls to half of max or below
}

// NewBudget returns a budget of max bytes; max 0 bounds nothing.
func NewBudget(max int64) *Budget {
	return &Budget{max: max, changed: make(chan struct{})}
}

func (b *Budget) take(n int64) {
	if b == nil || b.max == 0 {
		return
	}
	used := b.used.Add(n)
	for peak := b.peak.Load(); used > peak && !b.peak.CompareAndSwap(peak, used); peak = b.peak.Load() {
	}
}

func (b *Budget) give(n int64) {
	if b == nil || b.max == 0 || n == 0 {
		return
	}
	if used := b.used.Add(-n); used <= b.max/2 && used+n > b.max/2 { // crossed the waiters' mark
		b.mu.Lock()
		close(b.changed)
		b.changed = make(chan struct{})
		b.mu.Unlock()
	}
}

// spent reports a budget used up: a claim reads nothing more until it is half free.
func (b *Budget) spent() bool {
	return b != nil && b.max != 0 && b.used.Load() >= b.max
}

// watch returns whether half the budget is free, and the channel closed when it next
// becomes so. The channel is read first: a give that crosses the mark after it closes it, so
// that no change is missed in between.
func (b *Budget) watch() (free bool, changed <-chan struct{}) {
	b.mu.Lock()
	changed = b.changed
	b.mu.Unlock()
	return b.used.Load() <= b.max/2, changed
}

// Used is the bytes pending now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Peak is the most bytes pending at once so far.
func (b *Budget) Peak() int64 {
	if b == nil {
		return 0
	}
	return b.peak.Load()
}
