package atleastonce

import (
	"sync"
	"time"
)

// Ledger tracks, for one partition, the records read and not yet committed, in delivery
// order. Offsets are taken as delivered (they may have gaps: transaction markers,
// compaction); the commit point is the offset after the longest fully-done prefix.
type Ledger struct {
	mu      sync.Mutex
	entries []entry // delivery order; entries[i] has sequence base+i
	head    int     // entries[:head] were popped (kept to reuse the backing array)
	base    uint64  // sequence of entries[head]
	next    uint64  // sequence of the next record added
	commit  int64   // offset after the done prefix; -1 before anything is done
	sent    int64   // the commit point last committed; -1 before
	changed chan struct{}
	closed  bool

	budget *Budget // bytes of the records not yet done, for the whole process; may be nil

	start     int64 // the offset the claim started at
	highWater int64 // the partition's high-water mark, as last fetched
	moved     int64 // when the commit point last moved, or records came to an empty ledger (Unix ns)
}

type entry struct {
	offset int64
	read   int64 // when the record was read, in Unix nanoseconds
	size   int64 // its bytes, held against the budget until it is done
	done   bool
}

// NewLedger returns an empty ledger whose records count against budget (nil: none).
func NewLedger(budget *Budget) *Ledger {
	return &Ledger{commit: -1, sent: -1, changed: make(chan struct{}), budget: budget}
}

// Add records an offset of size bytes read at time read and returns its sequence number for
// Settle.
func (l *Ledger) Add(offset int64, read time.Time, size int64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.budget.take(size)
	if l.head > 0 && l.head >= len(l.entries)/2 { // compact
		n := copy(l.entries, l.entries[l.head:])
		l.entries = l.entries[:n]
		l.head = 0
	}
	if l.head == len(l.entries) {
		l.moved = read.UnixNano() // the wait for a commit starts now
	}
	l.entries = append(l.entries, entry{offset: offset, read: read.UnixNano(), size: size})
	seq := l.next
	l.next++
	return seq
}

// Settle marks the record with sequence seq as done and advances the commit point over the
// done prefix. Records settled after Close are ignored: their partition has moved on.
func (l *Ledger) Settle(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || seq < l.base {
		return
	}
	e := &l.entries[l.head+int(seq-l.base)]
	if !e.done {
		l.budget.give(e.size)
	}
	e.done = true
	advanced := false
	for l.head < len(l.entries) && l.entries[l.head].done {
		l.commit = l.entries[l.head].offset + 1
		l.head++
		l.base++
		advanced = true
	}
	if advanced {
		l.moved = time.Now().UnixNano()
		close(l.changed)
		l.changed = make(chan struct{})
	}
}

// Pending is how many records were read and are not yet done (or not behind the commit point).
func (l *Ledger) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries) - l.head
}

// CommitPoint is the offset to commit (the next one to read), or -1 when nothing is done yet.
func (l *Ledger) CommitPoint() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.commit
}

// ToCommit is the commit point when it moved past what was last committed.
func (l *Ledger) ToCommit() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.commit, l.commit >= 0 && l.commit > l.sent
}

// Committed records that the commit point cp was committed.
func (l *Ledger) Committed(cp int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = max(l.sent, cp)
}

// Watch returns the pending count and the channel closed at the next advance, read together,
// so that a waiter cannot miss an advance between looking at the count and waiting.
func (l *Ledger) Watch() (pending int, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries) - l.head, l.changed
}

// Close stops the ledger: later settlements are ignored, so the bytes of the records not yet
// done go back to the budget now.
func (l *Ledger) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	for _, e := range l.entries[l.head:] {
		if !e.done {
			l.budget.give(e.size)
		}
	}
}

// Abandon removes the last n records added, which were never handed on: they are neither
// done nor pending, and the commit point cannot pass them.
func (l *Ledger) Abandon(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n > len(l.entries)-l.head {
		n = len(l.entries) - l.head
	}
	for _, e := range l.entries[len(l.entries)-n:] {
		l.budget.give(e.size)
	}
	l.entries = l.entries[:len(l.entries)-n]
	l.next -= uint64(n)
}

// SetOffsets records where the claim started and the partition's high-water mark, for lag.
func (l *Ledger) SetOffsets(start, highWater int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start == 0 {
		l.start = start
	}
	l.highWater = highWater
}

// Lag is how many records the partition holds past the commit point (or past where the
// claim started, before anything is done).
func (l *Ledger) Lag() (lag, highWater, position int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	position = l.commit
	if position < 0 {
		position = l.start
	}
	return max(l.highWater-position, 0), l.highWater, position
}

// Stall says how long the commit point has not moved while records are pending (0 when none
// are), and how long ago the oldest pending record was read.
func (l *Ledger) Stall(now time.Time) (stuck, oldest time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.head == len(l.entries) {
		return 0, 0
	}
	return time.Duration(now.UnixNano() - l.moved), time.Duration(now.UnixNano() - l.entries[l.head].read)
}
