package sources

import "sync"

// Budget bounds the bytes of the records read and not yet done, across every partition of the
// process (max_pending_bytes): max_pending bounds a partition in records, which says nothing
// of memory when records are large or partitions many. A claim takes a record's bytes as it
// reads it and waits, paused, while the budget is spent; the ledger gives them back when the
// record is done, or when the claim ends.
type Budget struct {
	max int64 // 0: no bound

	mu      sync.Mutex
	used    int64
	peak    int64
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
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used += n
	b.peak = max(b.peak, b.used)
}

func (b *Budget) give(n int64) {
	if b == nil || b.max == 0 || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	before := b.used
	b.used -= n
	if before > b.max/2 && b.used <= b.max/2 { // the waiters' mark: wake them
		close(b.changed)
		b.changed = make(chan struct{})
	}
}

// spent reports a budget used up: a claim reads nothing more until it is half free.
func (b *Budget) spent() bool {
	if b == nil || b.max == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used >= b.max
}

// watch returns whether half the budget is free, and the channel closed when it next
// becomes so, read together so that no change is missed in between.
func (b *Budget) watch() (free bool, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used <= b.max/2, b.changed
}

// Used and Peak are the bytes pending now and at most so far.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak is the most bytes pending at once so far.
func (b *Budget) Peak() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}
