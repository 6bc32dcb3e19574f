package stages

import (
	"sync"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// Ticking is a Stage that closes windows by the clock: the engine hands it a tick (a
// record.Record with Tick set) for each partition of its input every TickEvery, when it is 0
// it takes none.
type Ticking interface {
	Stage
	TickEvery() time.Duration
}

// TickEvery implements Ticking: a partition idle for idle_close is noticed within a quarter
// of it more.
func (a *aggregate) TickEvery() time.Duration {
	if a.idleClose <= 0 {
		return 0
	}
	return max(a.idleClose/4, 10*time.Millisecond)
}

// idleClock keeps when each partition last brought a record, and when its stream time last
// moved on for want of one.
type idleClock struct {
	now   func() time.Time
	mu    sync.Mutex
	since map[int32]time.Time
}

// seen notes a record of partition p.
func (c *idleClock) seen(p int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since == nil {
		c.since = map[int32]time.Time{}
	}
	c.since[p] = c.now()
}

// idleFor says how long partition p has brought nothing (since its last record, its last
// move on, or the first tick that found it), and starts counting again when it is past
// limit: the caller moves the stream time on by what it returns.
func (c *idleClock) idleFor(p int32, limit time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since == nil {
		c.since = map[int32]time.Time{}
	}
	now := c.now()
	last, ok := c.since[p]
	if !ok {
		c.since[p] = now
		return 0
	}
	idle := now.Sub(last)
	if idle < limit {
		return 0
	}
	c.since[p] = now
	return idle
}

// tick moves the stream time of an idle partition on by the time it was idle, and closes the
// windows it passes: emitted, removed, on the changelog, as a record's coming would.
func (a *aggregate) tick(st *state.Store, rec *record.Record, out []Output) ([]Output, error) {
	part := a.part(st.Partition())
	part.Lock()
	defer part.Unlock()
	idle := a.idle.idleFor(st.Partition(), a.idleClose)
	if idle <= 0 {
		return out, nil
	}
	gen := st.Generation()
	stream, err := a.streamTime(st, part)
	if err != nil || stream == noTime { // no record yet: no window to close
		return out, err
	}
	now := stream + idle.Milliseconds()
	if err := st.Set(streamKey, appendTime(nil, now)); err != nil {
		return out, err
	}
	part.stream = now
	return a.closeWindows(st, part, gen, rec, now, nil, out)
}
