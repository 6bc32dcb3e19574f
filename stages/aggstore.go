package stages

import (
	"bytes"
	"errors"
	"time"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// closeBatch bounds the windows one record closes, so that a record after a long pause does
// not carry the output of every window closed meanwhile; the next records close the rest.
// Until then such a window is closed all the same: nothing folds into it.
const closeBatch = 256

// put is a window a record writes: its new state, encoded before anything is written.
type put struct {
	wkey   []byte
	ws     *winState
	value  []byte
	old    bool  // the window was in the store
	oldEnd int64 // where its end index entry was (a session grows)
}

// plan is what a record does to the store, decided before any of it is done: a record that
// fails (late, a sum that overflows) changes nothing.
type plan struct {
	puts    []put
	deletes []put    // sessions merged into another
	closing [][]byte // end index keys of closed windows in the way of a put (a new session's start)
	lateEnd int64    // the latest end of the record's windows, all closed
}

func (a *aggregate) apply(st *state.Store, rec *record.Record, in *aggInput, out []Output) ([]Output, error) {
	part := a.part(st.Partition())
	part.Lock()
	defer part.Unlock()

	gen := st.Generation()
	stream, err := a.streamTime(st, part)
	if err != nil {
		return out, err
	}
	now := max(stream, in.t)
	var p plan
	if a.win.kind == session {
		p, err = a.planSession(st, in, now)
	} else {
		p, err = a.planFixed(st, in, now)
	}
	if err != nil {
		return out, err
	}
	late := len(p.puts) == 0
	if late && !a.lateDrop {
		a.lateDLQ.Add(1)
		return out, &LateError{EventTime: time.UnixMilli(in.t), WindowEnd: time.UnixMilli(p.lateEnd), StreamTime: time.UnixMilli(now),
			Grace: time.Duration(a.win.grace) * time.Millisecond}
	}
	if now != stream {
		// Kept in the store at each record, so that an aborted transaction takes it back with
		// the rest; on the changelog only when windows close (closeWindows).
		if err := st.Set(streamKey, appendTime(nil, now)); err != nil {
			return out, err
		}
		part.stream = now
	}
	if out, err = a.closeWindows(st, part, gen, rec, now, p.closing, out); err != nil {
		return out, err
	}
	if late {
		a.lateDropped.Add(1)
		return out, nil
	}
	for _, d := range p.deletes {
		if err := a.removeWindow(st, in.key, d.ws.start, d.oldEnd); err != nil {
			return out, err
		}
		out = append(out, Output{Rec: change(rec, d.wkey, nil), Port: ChangelogPort})
	}
	for _, pu := range p.puts {
		if pu.old && pu.oldEnd != pu.ws.end {
			if err := st.Set(endKey(pu.oldEnd, pu.ws.start, in.key), nil); err != nil {
				return out, err
			}
		}
		if err := st.Set(pu.wkey, pu.value); err != nil {
			return out, err
		}
		if !pu.old || pu.oldEnd != pu.ws.end { // else its end is indexed already
			if err := st.Set(endKey(pu.ws.end, pu.ws.start, in.key), []byte{}); err != nil {
				return out, err
			}
		}
		part.nextEnd = min(part.nextEnd, pu.ws.end)
		if !pu.old {
			st.AddKeys(1)
		}
		out = append(out, Output{Rec: change(rec, pu.wkey, pu.value), Port: ChangelogPort})
		if a.updates {
			out = append(out, Output{Rec: a.output(rec, in.key, pu.ws)})
		}
	}
	return out, nil
}

// streamTime is the partition's stream time: the latest event time its records brought.
func (a *aggregate) streamTime(st *state.Store, part *aggPart) (int64, error) {
	if part.knows(st) {
		return part.stream, nil
	}
	v, ok, err := st.Get(streamKey)
	if err != nil || !ok || len(v) != 8 {
		return noTime, err
	}
	return readTime(v), nil
}

// planFixed folds the record into each of its tumbling or hopping windows still open.
func (a *aggregate) planFixed(st *state.Store, in *aggInput, now int64) (plan, error) {
	var p plan
	for _, start := range a.win.starts(in.t) {
		end := start + a.win.size
		if a.win.closed(end, now) {
			p.lateEnd = max(p.lateEnd, end)
			continue
		}
		k := windowKey(in.key, start)
		ws := &winState{start: start, end: end, maxTime: noTime, key: in.self.key, aggs: make([]aggState, len(a.specs))}
		v, old, err := st.Get(k)
		if err != nil {
			return p, err
		}
		if old {
			if ws, err = decodeState(a.specs, start, v); err != nil {
				return p, err
			}
		}
		self := *in.self
		self.start, self.end = start, end
		if err := merge(a.specs, ws, &self); err != nil {
			return p, err
		}
		value, err := ws.encode(a.specs)
		if err != nil {
			return p, err
		}
		p.puts = append(p.puts, put{wkey: k, ws: ws, value: value, old: old, oldEnd: end})
	}
	return p, nil
}

// planSession makes the record's own session [t, t+gap) and merges into it every open
// session of its key it overlaps: it may join two.
func (a *aggregate) planSession(st *state.Store, in *aggInput, now int64) (plan, error) {
	var p plan
	t := in.t
	self := *in.self
	self.start, self.end = t, t+a.win.gap
	prefix := keyWindows(in.key)
	type found struct {
		start, end int64
		value      []byte
	}
	var overlapping []found
	closedAt := map[int64][]byte{} // closed sessions by start: end index keys
	var bad error
	err := st.Scan(prefix, append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), func(k, v []byte) bool {
		if len(k) != len(prefix)+8 {
			return true
		}
		start := readTime(k[len(prefix):])
		end, _, herr := stateHeader(v)
		if herr != nil {
			bad = herr
			return false
		}
		switch {
		case a.win.closed(end, now):
			closedAt[start] = endKey(end, start, in.key)
		case a.win.overlaps(start, end, t):
			overlapping = append(overlapping, found{start, end, bytes.Clone(v)})
		}
		return true
	})
	if err != nil || bad != nil {
		return p, errors.Join(err, bad)
	}
	if len(overlapping) == 0 && a.win.closed(self.end, now) {
		p.lateEnd = self.end
		return p, nil
	}
	merged := &winState{start: t, end: self.end, maxTime: noTime, key: self.key, aggs: make([]aggState, len(a.specs))}
	var olds []found
	for _, o := range overlapping {
		ws, err := decodeState(a.specs, o.start, o.value)
		if err != nil {
			return p, err
		}
		if err := merge(a.specs, merged, ws); err != nil {
			return p, err
		}
		olds = append(olds, o)
	}
	if err := merge(a.specs, merged, &self); err != nil {
		return p, err
	}
	value, err := merged.encode(a.specs)
	if err != nil {
		return p, err
	}
	pu := put{wkey: windowKey(in.key, merged.start), ws: merged, value: value, oldEnd: merged.end}
	for _, o := range olds {
		if o.start == merged.start {
			pu.old, pu.oldEnd = true, o.end
			continue
		}
		p.deletes = append(p.deletes, put{wkey: windowKey(in.key, o.start), ws: &winState{start: o.start}, oldEnd: o.end})
	}
	if ek, ok := closedAt[merged.start]; ok {
		// A closed session not yet emitted (closeBatch) where the new one starts: it goes
		// first, or the new one would overwrite it.
		p.closing = append(p.closing, ek)
	}
	p.puts = append(p.puts, pu)
	return p, nil
}

func containsBytes(list [][]byte, b []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, b) {
			return true
		}
	}
	return false
}

// removeWindow deletes a window and its end index entry.
func (a *aggregate) removeWindow(st *state.Store, key []byte, start, end int64) error {
	wk := windowKey(key, start)
	_, found, err := st.Get(wk)
	if err != nil {
		return err
	}
	if err := st.Set(wk, nil); err != nil {
		return err
	}
	if found {
		st.AddKeys(-1)
	}
	return st.Set(endKey(end, start, key), nil)
}

// output is the record a window emits. It carries the tracker and the source position of the
// record that made it (so that it is committed with it), and that record's body as consumed
// (what a DLQ record of it shows).
func (a *aggregate) output(rec *record.Record, key []byte, ws *winState) *record.Record {
	msg := make(map[string]any, len(a.specs)+3)
	msg["key"], msg["window_start"], msg["window_end"] = ws.key, time.UnixMilli(ws.start).UTC(), time.UnixMilli(ws.end).UTC()
	for i, sp := range a.specs {
		msg[sp.name] = ws.aggs[i].result(sp, ws.count)
	}
	return &record.Record{Key: bytes.Clone(key), Value: rec.Value, Msg: msg, Decoded: true, Timestamp: time.UnixMilli(ws.end).UTC(),
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, OrigKey: rec.OrigKey, OrigHeaders: rec.OrigHeaders, Track: rec.Track}
}

// Restore implements Stateful: a changelog record is a window's state or its tombstone, or
// the stream time. The end index is rebuilt from the windows, and the stream time is at least
// the latest event time of any window (a window's records moved it there even when no window
// has closed since).
func (a *aggregate) Restore(s *state.Store, key, value []byte) error {
	if len(key) == 0 {
		return nil
	}
	switch key[0] {
	case metaStream:
		if len(value) != 8 {
			return nil
		}
		return raiseStream(s, readTime(value))
	case windowPrefix:
		gk, start, ok := parseWindowKey(key)
		if !ok {
			return nil
		}
		if old, found, err := s.Get(key); err != nil {
			return err
		} else if found {
			if end, _, err := stateHeader(old); err == nil {
				if err := s.Set(endKey(end, start, gk), nil); err != nil {
					return err
				}
			}
		}
		if value == nil {
			return s.Set(key, nil)
		}
		end, maxTime, err := stateHeader(value)
		if err != nil {
			return err
		}
		if err := s.Set(key, value); err != nil {
			return err
		}
		if err := s.Set(endKey(end, start, gk), []byte{}); err != nil {
			return err
		}
		return raiseStream(s, maxTime)
	}
	return nil
}

func raiseStream(s *state.Store, t int64) error {
	v, ok, err := s.Get(streamKey)
	if err != nil {
		return err
	}
	if ok && len(v) == 8 && readTime(v) >= t {
		return nil
	}
	return s.Set(streamKey, appendTime(nil, t))
}

// Count implements Stateful: the windows of a store just opened.
func (a *aggregate) Count(st *state.Store) (int64, error) {
	var n int64
	err := st.Scan([]byte{windowPrefix}, []byte{windowPrefix + 1}, func(_, _ []byte) bool { n++; return true })
	return n, err
}

// Released implements Stateful: the stage keeps nothing of a partition beside its store.
func (a *aggregate) Released(int32) {}

// Counters implements Counting.
func (a *aggregate) Counters() map[string]int64 {
	c := map[string]int64{"windows_closed": a.closedN.Load(), "late_dlq": a.lateDLQ.Load(), "late_dropped": a.lateDropped.Load()}
	storeNumbers(c, a.stores.Load())
	c["windows_open"] = c["keys"] // a key of the store is a window
	return c
}

var aggregateExamples = []spec.Example{
	{Title: "Orders and revenue per customer per minute, late orders to the DLQ", YAML: `
stages:
  - name: parse
    type: decode
    schema: {order_id: string, customer_id: string, amount: float, created_at: time}
  - name: per-minute
    type: aggregate
    key: msg.customer_id
    time: msg.created_at
    window: {tumbling: 1m}
    grace: 10s
    aggregates:
      orders: count()
      revenue: sum(msg.amount)
      biggest: max(msg.amount)
`},
	{Title: "Sessions of a user's clicks, updated at each click", YAML: `
stages:
  - name: parse
    type: decode
    schema: {user: string, page: string}
  - name: sessions
    type: aggregate
    window: {session: {gap: 30m}}
    emit: updates
    late: drop
    aggregates:
      clicks: count()
      pages: count_distinct(msg.page)
      landing: first(msg.page)
`},
	{Title: "A 5-minute average every minute", YAML: `
stages:
  - name: parse
    type: decode
    schema: {sensor: string, celsius: float}
  - name: smooth
    type: aggregate
    window: {hopping: {size: 5m, advance: 1m}}
    aggregates:
      mean: avg(msg.celsius)
      low: min(msg.celsius)
      high: max(msg.celsius)
`},
}

// StateKey implements Stateful: the engine repartitions the records by it when it is not the
// record's key.
func (a *aggregate) StateKey() *expr.Program { return a.key }
