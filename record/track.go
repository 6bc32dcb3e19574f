package record

import "sync/atomic"

// Settler is told when a consumed record is done; the Kafka source's partition ledger is one.
type Settler interface {
	Settle(seq uint64)
}

// Tracker counts the outstanding copies of one consumed record. It starts at one; a branch
// that fans out adds copies; each final outcome (filtered, acknowledged by a sink's broker,
// dead-lettered) removes one. At zero the record is settled with its owner, exactly once.
type Tracker struct {
	n     atomic.Int32
	owner Settler
	seq   uint64
}

// NewTracker returns a tracker with one outstanding copy, settled as seq with owner.
func NewTracker(owner Settler, seq uint64) *Tracker {
	t := &Tracker{owner: owner, seq: seq}
	t.n.Store(1)
	return t
}

// Tracked is rec with a tracker of one outstanding copy, settled as seq with owner, made in
// one allocation with the record rather than two: a source makes one per record consumed.
// (A copy a fan-out made keeps the tracker, and so the original's struct, until it is done.)
func Tracked(rec Record, owner Settler, seq uint64) *Record {
	both := &struct {
		rec   Record
		track Tracker
	}{rec: rec, track: Tracker{owner: owner, seq: seq}}
	both.track.n.Store(1)
	both.rec.Track = &both.track
	return &both.rec
}

// Add records n more outstanding copies. It must be called before the copies are handed on.
func (t *Tracker) Add(n int) {
	if t != nil && n != 0 {
		t.n.Add(int32(n))
	}
}

// Done records one final outcome; the last one settles the record.
func (t *Tracker) Done() {
	if t == nil {
		return
	}
	switch left := t.n.Add(-1); {
	case left == 0:
		t.owner.Settle(t.seq)
	case left < 0:
		panic("record: Tracker.Done called more often than copies were made") // an engine bug
	}
}

// Outstanding reports how many copies are not done yet.
func (t *Tracker) Outstanding() int { return int(t.n.Load()) }

// Owner is who the record is settled with: the exactly-once sinks find a record's
// transaction there.
func (t *Tracker) Owner() Settler {
	if t == nil {
		return nil
	}
	return t.owner
}
