package stages

import (
	"bytes"
	"math"
	"sync"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// aggPart is what an aggregate keeps of one partition beside its store: the lock of its
// records (its stream time is one), and what the store held when last read, while it is the
// same store in the same generation (otherwise known is nil), so that a record with no
// window to close reads neither its stream time nor the end index.
type aggPart struct {
	sync.Mutex
	known   *state.Store
	gen     uint64
	stream  int64 // the stream time
	nextEnd int64 // no window ends before it (math.MaxInt64: none is open)
}

// knows reports whether stream and nextEnd are st's now.
func (p *aggPart) knows(st *state.Store) bool { return p.known == st && p.gen == st.Generation() }

// part is what the stage keeps of partition p.
func (a *aggregate) part(p int32) *aggPart {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.parts[p]
	if m == nil {
		m = &aggPart{}
		a.parts[p] = m
	}
	return m
}

// closeWindows closes the windows whose end plus grace stream time has reached (and those
// of closing), in the order they end: emitted (emit final), then gone from the store and
// the changelog. The stream time goes on the changelog with them, so that a restore judges
// late what was late before. now is the stream time, in the store already; gen is st's
// generation when the record began.
func (a *aggregate) closeWindows(st *state.Store, part *aggPart, gen uint64, rec *record.Record, now int64, closing [][]byte, out []Output) ([]Output, error) {
	if now == noTime {
		return out, nil
	}
	cutoff := now - a.win.grace + 1 // the windows ending before it are closed
	if part.knows(st) && len(closing) == 0 && part.nextEnd >= cutoff {
		return out, nil
	}
	part.known = nil
	// The windows closed before are deleted, but their deletions stay in the store until it
	// compacts, and a scan from the start would step over all of them at every record: it
	// starts where the last close left off.
	lo, hi := []byte{endPrefix}, appendTime([]byte{endPrefix}, cutoff)
	if v, ok, err := st.Get(closedKey); err != nil {
		return out, err
	} else if ok && len(v) == 8 {
		lo = appendTime([]byte{endPrefix}, readTime(v))
	}
	// The windows due, and past them the earliest end of those left.
	var due [][]byte
	next := int64(math.MaxInt64)
	err := st.Scan(lo, []byte{endPrefix + 1}, func(k, _ []byte) bool {
		if bytes.Compare(k, hi) >= 0 {
			next = readTime(k[1:9])
			return false
		}
		due = append(due, bytes.Clone(k))
		if len(due) == closeBatch {
			next = unknownNext
			return false
		}
		return true
	})
	if err != nil {
		return out, err
	}
	// All below hi is closed once these are: no window ending there is ever written again
	// (a record's windows that end there are late).
	if len(due) > 0 && len(due) < closeBatch {
		if err := st.Set(closedKey, appendTime(nil, cutoff)); err != nil {
			return out, err
		}
	}
	for _, k := range closing {
		if !containsBytes(due, k) {
			due = append(due, k)
		}
	}
	// The windows closed and their end index entries go in one write: a commit of the store
	// for each made a close of 10,007 windows slow.
	gone := make([]state.Change, 0, 2*len(due))
	for _, ek := range due {
		_, start, key, ok := parseEndKey(ek)
		if !ok {
			continue
		}
		wk := windowKey(key, start)
		v, found, err := st.Get(wk)
		if err != nil {
			return out, err
		}
		if found && !a.updates {
			ws, err := decodeState(a.specs, start, v)
			if err != nil {
				return out, err
			}
			out = append(out, Output{Rec: a.output(rec, key, ws)})
		}
		gone = append(gone, state.Change{Key: wk}, state.Change{Key: ek})
		if found {
			st.AddKeys(-1)
			out = append(out, Output{Rec: change(rec, wk, nil), Port: ChangelogPort})
			a.closedN.Add(1)
		}
	}
	if err := st.Apply(gone...); err != nil {
		return out, err
	}
	if len(due) > 0 {
		out = append(out, Output{Rec: change(rec, streamKey, appendTime(nil, now)), Port: ChangelogPort})
	}
	if next != unknownNext {
		part.known, part.gen, part.stream, part.nextEnd = st, gen, now, next
	}
	return out, nil
}
