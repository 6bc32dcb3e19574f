package stages

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/state"
)

const dedupeDoc = "Drops the records whose key was seen within `within` before: the first of a key passes, later ones are dropped and counted. Its keys are kept per input partition in a store that survives restarts (`state.dir`, backed by a changelog topic)."

var dedupeFields = []spec.Field{
	spec.Expr("key", "any", "What a duplicate shares. Default: the record's key."),
	spec.Duration("within", "How long a key is remembered: a record whose key was first seen less than this before is a duplicate. Then the key leaves the store (and its changelog).").Require(),
	spec.Enum("time", "event: the records' timestamps measure within (a replay dedupes as the live run did); processing: the clock when the record is processed.", "event", "processing").WithDefault("event"),
}

// dedupeType is the dedupe stage type as the registry knows it.
func dedupeType() *Type {
	return &Type{Name: "dedupe", Doc: dedupeDoc, Fields: dedupeFields, Build: buildDedupe, Examples: dedupeExamples,
		Look: Look{DOTShape: "box", MermaidOpen: "[[", MermaidClose: "]]", Detail: func(f *spec.Value) (string, string) {
			key := "key"
			if v := f.Get("key"); v.Set {
				key = v.Written()
			}
			return " within " + f.Get("within").Written(), "by " + key
		}},
		Counters: append([]spec.Counter{
			{Key: "duplicates", Metric: "stage_duplicates_total", Help: "Records dropped as duplicates of a key seen within `within`."},
			{Key: "expired", Metric: "stage_state_expired_total", Help: "Keys that left the store, `within` after they were first seen."},
		}, storeCounters...),
	}
}

// storeCounters are the numbers every stateful stage keeps of its stores (storeNumbers); one
// description each, for a metric is described once whatever stage keeps it.
var storeCounters = []spec.Counter{
	{Key: "keys", Metric: "stage_state_keys", Gauge: true, Help: "Keys in the stage's open stores."},
	{Key: "store_bytes", Metric: "stage_state_bytes", Gauge: true, Help: "The stage's open stores' size on disk and in memory tables."},
	restoringCounters[0], restoringCounters[1], restoringCounters[2],
}

// restoringCounters are the numbers of restores, kept by stateful stages and table lookups
// alike: /readyz and the progress line read "restoring".
var restoringCounters = []spec.Counter{
	{Key: "restoring", Metric: "stage_state_restoring_partitions", Gauge: true, Help: "Partitions whose store is being restored from its changelog: their records wait."},
	{Key: "restored", Metric: "stage_state_restored_total", Help: "Changelog records applied by restores."},
	{Key: "restore_ms", Metric: "stage_state_restore_milliseconds_total", Help: "Time spent restoring stores from their changelogs."},
}

// storeNumbers adds to c the numbers of storeCounters, read from stores (nil before the run
// opened them).
func storeNumbers(c map[string]int64, stores *state.Stores) {
	if stores == nil {
		return
	}
	s := stores.Stats()
	c["keys"], c["store_bytes"], c["restoring"], c["restored"] = s.Keys, s.Bytes, int64(s.Restoring), s.Restored
	c["restore_ms"] = int64(s.RestoreS * 1000)
}

// ChangelogPort is the port a stateful stage's changes leave by: records whose key and value
// are the store's, written to its changelog topic, in the partition the record was read from.
// Their record's tracker counts them, so a record is done only once its changes are in the
// changelog.
const ChangelogPort = 1

// Stateful is a Stage keeping state per input partition in stores backed by a changelog
// topic (dedupe). The engine gives it its stores before the first record (OpenState) and
// wires ChangelogPort to its changelog; it releases a partition's store when the partition
// leaves the instance.
type Stateful interface {
	Stage
	// OpenState gives the stage its stores, made with its Restore.
	OpenState(stores *state.Stores)
	// Restore writes one changelog record into a store, with what the stage derives from it.
	Restore(s *state.Store, key, value []byte) error
	// Count counts the keys of a store just opened (the stores' keys metric).
	Count(s *state.Store) (int64, error)
	// StateKey computes what the stage keeps state by; nil: the record's key. The engine
	// repartitions the stage's records by it, so that one key's records meet in one
	// partition's store.
	StateKey() *expr.Program
	// Released tells the stage that a partition's store was released: what it kept of the
	// partition beside the store is to be read again from the store next time.
	Released(partition int32)
}

type dedupe struct {
	key        *expr.Program // nil: the record's key
	env        *expr.Binder
	within     time.Duration
	processing bool
	now        func() time.Time

	stores atomic.Pointer[state.Stores] // set by OpenState as the run starts; read by Counters meanwhile
	mu     sync.Mutex
	parts  map[int32]*dedupePart
	// filterFirst is the first part of a partition's key filter: room for keyFilterFirst keys
	// (tests set fewer).
	filterFirst int

	duplicates, expired atomic.Int64
}

func buildDedupe(c *Config) Built {
	d := &dedupe{within: c.Fields.Duration("within"), processing: c.Fields.String("time") == "processing", now: time.Now, parts: map[int32]*dedupePart{}, filterFirst: keyFilterFirst}
	if v := c.Fields.Get("within"); v.Set && d.within <= 0 {
		c.Diags().Add(v.Pos, v.Path, "within must be above 0, how long a key is remembered")
	}
	if v := c.Fields.Get("key"); v.Set && strings.TrimSpace(v.Str) != "key" {
		if d.key = expr.Compile(v, c.Env(), expr.WantAny, c.Diags()); d.key == nil {
			return Built{Out: c.In}
		}
		if !keyable(d.key.Result) {
			c.Diags().Add(v.Pos, v.Path, "a dedupe key cannot be a %s: compute a string or a number from it", d.key.Result)
			return Built{Out: c.In}
		}
		d.env = expr.NewBinder(d.key)
	}
	return Built{Stage: d, Out: c.In}
}

// keyable reports whether values of s can be a key: not maps or lists, whose bytes would be
// their JSON, with no order a reader can rely on.
func keyable(s *expr.Schema) bool {
	return s == nil || (s.Kind != expr.Object && s.Kind != expr.List)
}

// StateKey implements Stateful.
func (d *dedupe) StateKey() *expr.Program { return d.key }

// OpenState implements Stateful.
func (d *dedupe) OpenState(stores *state.Stores) { d.stores.Store(stores) }

// A store holds, per key, "k"+key → when it was first seen (unix ms) and the offset of the
// record that passed with it; and "t"+when+key → nothing, the keys in the order they expire;
// and "x" → the time below which no "t" entry is left, where the next expiry scans from
// (local: a restored store scans all once). The changelog carries the "k" entries as key →
// value.
const (
	keyPrefix  = 'k'
	timePrefix = 't'
)

var expiredKey = []byte{'x'}

func entryKey(key []byte) []byte { return append([]byte{keyPrefix}, key...) }

func timeKey(ms int64, key []byte) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{timePrefix}, uint64(ms)), key...)
}

func entryValue(ms, offset int64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(ms)), uint64(offset))
}

func readEntry(v []byte) (ms, offset int64, ok bool) {
	if len(v) != 16 {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), true
}

// Restore implements Stateful: a changelog record is a key's entry, or its tombstone.
func (d *dedupe) Restore(s *state.Store, key, value []byte) error {
	if old, ok, err := s.Get(entryKey(key)); err != nil {
		return err
	} else if ok {
		if ms, _, ok := readEntry(old); ok {
			if err := s.Set(timeKey(ms, key), nil); err != nil {
				return err
			}
		}
	}
	ms, _, ok := readEntry(value)
	if !ok {
		return s.Set(entryKey(key), nil) // a tombstone, or what is not an entry
	}
	if err := s.Set(entryKey(key), value); err != nil {
		return err
	}
	return s.Set(timeKey(ms, key), []byte{})
}

// ErrNoDedupeKey is a record with no key to tell its duplicates by.
var ErrNoDedupeKey = errors.New("dedupe: the record has no key (a dedupe goes by the record's key unless `key` computes one)")

func (d *dedupe) Process(ctx context.Context, rec *record.Record, out []Output) ([]Output, error) {
	key := rec.Key
	if d.key != nil {
		vars := d.env.Bind(rec)
		v, err := d.key.Run(vars)
		d.env.Release(vars)
		if err != nil {
			return out, err
		}
		key = record.ToBytes(v)
	}
	if key == nil {
		return out, ErrNoDedupeKey
	}
	base := len(out)
	for {
		st, err := d.stores.Load().Get(ctx, rec.Partition)
		if err != nil {
			return out, err
		}
		res, err := d.check(st, rec, key, out)
		if !errors.Is(err, state.ErrReleased) {
			return res, err
		}
		out = out[:base] // released meanwhile (its partition moved): ask for it again
	}
}

// check lets rec pass unless its key was seen within the window, in st.
func (d *dedupe) check(st *state.Store, rec *record.Record, key []byte, out []Output) ([]Output, error) {
	part := d.part(st)
	part.mu.Lock()
	defer part.mu.Unlock()

	now := d.now().UnixMilli()
	if !d.processing && !rec.Timestamp.IsZero() {
		now = rec.Timestamp.UnixMilli()
	}
	part.latest = max(part.latest, now)
	out, expiredBelow, err := d.expireDue(st, part, rec, out)
	if err != nil {
		return out, err
	}

	ek := entryKey(key)
	old, seen, err := d.lookup(st, part, ek)
	if err != nil {
		return out, err
	}
	value := entryValue(now, rec.Offset)
	changes := make([]state.Change, 0, 4)
	if seen {
		ms, offset, ok := readEntry(old)
		switch {
		case ok && offset == rec.Offset:
			// The record that passed with the key, read again (at-least-once, after a
			// crash before its offset was committed): it passes again, as it did.
			return append(out, Output{Rec: rec}), nil
		case ok && now-ms < d.within.Milliseconds():
			d.duplicates.Add(1)
			return out, nil
		case ok:
			changes = append(changes, state.Change{Key: timeKey(ms, key)})
			st.AddKeys(-1)
		}
	}
	changes = append(changes, state.Change{Key: ek, Value: value}, state.Change{Key: timeKey(now, key), Value: []byte{}})
	if now < expiredBelow { // a record older than the expired: the next expiry scans from it
		changes = append(changes, state.Change{Key: expiredKey, Value: binary.BigEndian.AppendUint64(nil, uint64(now))})
	}
	if err := st.Apply(changes...); err != nil {
		return out, err
	}
	d.file(st, part, ek)
	if now < expiredBelow {
		part.below = now
	}
	part.next = min(part.next, now)
	st.AddKeys(1)
	return append(out, Output{Rec: rec}, Output{Rec: change(rec, key, value), Port: ChangelogPort}), nil
}

// change is the changelog record of a change rec made: the store's key and value (nil: a
// tombstone), to the partition rec was read from, counted by rec's tracker.
func change(rec *record.Record, key, value []byte) *record.Record {
	return &record.Record{Key: key, Value: value, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Timestamp: rec.Timestamp, Track: rec.Track}
}

// part returns what the stage keeps of st's partition.
func (d *dedupe) part(st *state.Store) *dedupePart {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.parts[st.Partition()]
	if p == nil {
		p = &dedupePart{}
		d.parts[st.Partition()] = p
	}
	return p
}

// Count implements Stateful: the keys of a store just opened, and the filter of them its
// partition's lookups go through.
func (d *dedupe) Count(st *state.Store) (int64, error) {
	part := d.part(st)
	part.mu.Lock()
	defer part.mu.Unlock()
	return d.refilter(st, part)
}

// refilter gives part a filter of st's keys built anew (none when it has no room or st cannot
// be read), and counts them. Under part.mu.
func (d *dedupe) refilter(st *state.Store, part *dedupePart) (int64, error) {
	d.unfilter(part)
	f, n, err := d.filter(st)
	if f != nil {
		part.filter, part.filterOf = f, st
	}
	return n, err
}

// filter scans st's keys into a new filter, and counts them. The filter is nil when the
// stage's share of the state memory (state.Memory.Reserve) has no room for it.
func (d *dedupe) filter(st *state.Store) (*keyFilter, int64, error) {
	var f *keyFilter
	if d.memory().Reserve(keyFilterPartBytes(d.filterFirst)) {
		f = newKeyFilter(d.filterFirst)
	}
	var n int64
	err := st.Scan([]byte{keyPrefix}, []byte{keyPrefix + 1}, func(k, _ []byte) bool {
		n++
		if f != nil {
			f = d.filed(f, k)
		}
		return true
	})
	if err != nil && f != nil {
		d.memory().Reserve(-f.bytes())
		f = nil
	}
	return f, n, err
}

// filed adds key to f, growing it within the stage's share of the state memory; nil, its
// memory given back, when it cannot grow.
func (d *dedupe) filed(f *keyFilter, key []byte) *keyFilter {
	if f.full() {
		if !d.memory().Reserve(f.next()) {
			d.memory().Reserve(-f.bytes())
			return nil
		}
		f.grow()
	}
	f.add(key)
	return f
}

// file adds ek, just written to st, to the partition's filter. A full filter with room for
// more than twice the store's keys holds mostly keys that left: it is built anew from the
// store instead of growing (a store that cannot be read leaves the partition without one:
// its keys are looked up). Under part.mu.
func (d *dedupe) file(st *state.Store, part *dedupePart, ek []byte) {
	if part.filterOf != st {
		return
	}
	if part.filter.full() && part.filter.capacity() > 2*int(st.Keys())+d.filterFirst {
		_, _ = d.refilter(st, part) // without a filter, its keys are looked up
		return
	}
	if part.filter = d.filed(part.filter, ek); part.filter == nil {
		part.filterOf = nil
	}
}

// unfilter gives the partition's filter up. Under part.mu.
func (d *dedupe) unfilter(part *dedupePart) {
	if part.filter != nil {
		d.memory().Reserve(-part.filter.bytes())
	}
	part.filter, part.filterOf = nil, nil
}

func (d *dedupe) memory() *state.Memory { return d.stores.Load().Memory() }

// lookup is st.Get(ek), unless the partition's filter says st cannot hold ek. Under part.mu.
func (d *dedupe) lookup(st *state.Store, part *dedupePart, ek []byte) ([]byte, bool, error) {
	if part.filterOf == st && !part.filter.mayHold(ek) {
		return nil, false, nil
	}
	return st.Get(ek)
}

// Released implements Stateful.
func (d *dedupe) Released(partition int32) {
	d.mu.Lock()
	part := d.parts[partition]
	delete(d.parts, partition)
	d.mu.Unlock()
	if part != nil {
		part.mu.Lock()
		d.unfilter(part)
		part.mu.Unlock()
	}
}

// Counters implements Counting.
func (d *dedupe) Counters() map[string]int64 {
	c := map[string]int64{"duplicates": d.duplicates.Load(), "expired": d.expired.Load()}
	storeNumbers(c, d.stores.Load())
	return c
}

var dedupeExamples = []spec.Example{
	{Title: "Drop a payment id seen in the last 24 hours", YAML: `
stages:
  - name: parse
    type: decode
    schema: {payment_id: string, amount: float}
  - name: once
    type: dedupe
    key: msg.payment_id
    within: 24h
`},
}
