package stages

import (
	"bytes"
	"encoding/binary"
	"math"
	"sync"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// dedupePart is what a dedupe keeps of one partition beside its store.
type dedupePart struct {
	mu     sync.Mutex // a key's lookup and its write go together, whatever worker runs them
	latest int64      // the latest time seen, unix ms: keys older than it by within expire
	// What the store held when last read, while it is the same store in the same generation
	// (otherwise nil): the expiry mark ("x") and the time of its earliest key ("t"), so that
	// a record with no key due to expire reads neither.
	known       *state.Store
	gen         uint64
	below, next int64
	// The keys of filterOf (nil until its keys are counted as it opens): a key it says the
	// store cannot hold is not looked up.
	filter   *keyFilter
	filterOf *state.Store
}

// knows reports whether below and next are st's now.
func (p *dedupePart) knows(st *state.Store) bool { return p.known == st && p.gen == st.Generation() }

// expireBatch bounds the keys one record expires, so that a record after a long pause does not
// take the time of every key that expired meanwhile; the next records take the rest.
const expireBatch = 64

// expireDue is expire, unless what the partition knows of the store says no key is due.
func (d *dedupe) expireDue(st *state.Store, part *dedupePart, rec *record.Record, out []Output) ([]Output, int64, error) {
	if part.knows(st) && part.latest-d.within.Milliseconds() <= part.next {
		return out, part.below, nil
	}
	part.known = nil
	gen := st.Generation() // before the reads: a change meanwhile leaves part not knowing
	out, below, next, err := d.expire(st, part, rec, out)
	if err == nil && next != unknownNext {
		part.known, part.gen, part.below, part.next = st, gen, below, next
	}
	return out, below, err
}

// unknownNext is the time of a store's earliest key to expire (or window to close) when a
// scan stopped at its batch before it.
const unknownNext = math.MinInt64

// expire removes the keys first seen more than within before the partition's latest time,
// and emits their tombstones. It returns the time below which no key is left, and the time
// of the earliest key that is (math.MaxInt64: none; unknownNext: not read).
//
// The keys expired before are deleted, but their deletions stay in the store until it
// compacts, and a scan from the start would step over all of them at every record: it starts
// where the last expiry left off (math.MinInt64: the start).
func (d *dedupe) expire(st *state.Store, part *dedupePart, rec *record.Record, out []Output) ([]Output, int64, int64, error) {
	below := int64(math.MinInt64)
	if v, ok, err := st.Get(expiredKey); err != nil {
		return out, below, unknownNext, err
	} else if ok && len(v) == 8 {
		below = int64(binary.BigEndian.Uint64(v))
	}
	cutoff := part.latest - d.within.Milliseconds()
	lo := []byte{timePrefix}
	if below > 0 {
		lo = timeKey(below, nil)
	}
	// The keys due, and past them the earliest key left.
	var gone [][]byte
	next := int64(math.MaxInt64)
	due := timeKey(cutoff, nil)
	err := st.Scan(lo, []byte{timePrefix + 1}, func(k, _ []byte) bool {
		if cutoff <= 0 || cutoff <= below || bytes.Compare(k, due) >= 0 {
			next = int64(binary.BigEndian.Uint64(k[1:9]))
			return false
		}
		gone = append(gone, append([]byte(nil), k...))
		if len(gone) == expireBatch {
			next = unknownNext
			return false
		}
		return true
	})
	if err != nil {
		return out, below, unknownNext, err
	}
	if cutoff <= 0 || cutoff <= below {
		return out, below, next, nil
	}
	// All below cutoff is gone with these. With none gone the mark still moves (a second's
	// worth at least: not a write per record), past deletions made elsewhere (a key seen
	// again after its time).
	if len(gone) < expireBatch && (len(gone) > 0 || cutoff-below >= 1000) {
		if err := st.Set(expiredKey, binary.BigEndian.AppendUint64(nil, uint64(cutoff))); err != nil {
			return out, below, unknownNext, err
		}
		below = cutoff
	}
	for _, tk := range gone {
		key := tk[9:]
		if err := st.Set(tk, nil); err != nil {
			return out, below, unknownNext, err
		}
		if err := st.Set(entryKey(key), nil); err != nil {
			return out, below, unknownNext, err
		}
		st.AddKeys(-1)
		d.expired.Add(1)
		out = append(out, Output{Rec: change(rec, key, nil), Port: ChangelogPort})
	}
	return out, below, next, nil
}
