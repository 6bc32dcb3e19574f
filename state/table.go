package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TableTopic is a table lookup's topic as its store reads it: every partition, from given
// offsets, read_committed, on and on (a global table, as Kafka Streams' GlobalKTable).
type TableTopic interface {
	// Ends are the partitions' ends now (their last stable offsets): a table read up to them
	// is restored. Its keys are every partition of the topic.
	Ends(ctx context.Context) (map[int32]int64, error)
	// Follow reads the partitions from the offsets of from (0 for a partition not in it:
	// its start) and on, until ctx ends (nil then) or the reading fails. apply is called for
	// every record and transaction marker (control), in offset order within a partition;
	// value is nil for a tombstone. An error of apply ends Follow with it.
	Follow(ctx context.Context, from map[int32]int64, apply func(partition int32, offset int64, key, value []byte, control bool) error) error
}

// TableChange is one message of a table's topic as the table applies it: a key's latest
// value (nil: deleted), or only a position (Control: a transaction marker, or a record the
// table does not keep).
type TableChange struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte // nil deletes Key
	Control   bool   // only the position moves
}

// Table is a table lookup's store: the latest value of every key of its topic, in one local
// Pebble database of all the topic's partitions, with the offset each partition is read up
// to. Those offsets are written in the same batch as the values, so that what the database
// holds is always the topic up to them; but only a table closed cleanly is trusted when it
// is opened again (a crash may have cut its write-ahead log anywhere): any other is emptied
// and read from the topic's start.
//
// One goroutine applies changes; any number read.
type Table struct {
	db   *pebble.DB
	next map[int32]int64 // the offset each partition is read up to; the applier's alone
	keys atomic.Int64
	// readBy is what the values are read by (OpenTable's), kept in the store.
	readBy string

	// Reread says the store was emptied as it opened because the format and schema its
	// values were read by differ from readBy: values left out then may be readable now, and
	// values kept unreadable.
	Reread bool

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) by every apply that changed a key
	closed  bool
}

// tableCleanKey marks a table closed cleanly: its offsets can be read on from.
var tableCleanKey = []byte{0, 'c', 'l', 'e', 'a', 'n'}

// tableReadByKey holds what the table's values were read by (OpenTable's readBy).
var tableReadByKey = []byte{0, 'r', 'e', 'a', 'd'}

// tableOffsetKey holds the offset a partition is read up to.
func tableOffsetKey(partition int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{0, 'o'}, uint32(partition))
}

// OpenTable opens the table store in dir ("" keeps it in memory), in a memory of its own
// of cacheBytes; readBy names the format and schema the topic's values are read by (which
// ones are kept, and how a kept one is read at a lookup). A store not closed cleanly, or whose
// values were read by another readBy, is emptied. The table is marked not clean until
// Close(true).
func OpenTable(dir string, cacheBytes int64, readBy string) (*Table, error) {
	m := NewMemory(cacheBytes)
	t, err := OpenTableIn(dir, m, readBy)
	m.Close() // the database holds the cache until it closes
	return t, err
}

// OpenTableIn is OpenTable in the run's memory m.
func OpenTableIn(dir string, m *Memory, readBy string) (*Table, error) {
	opts := m.options()
	if dir == "" {
		opts.FS = vfs.NewMem()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &TableError{Err: err}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, &TableError{Err: fmt.Errorf("opening %s: %w", dir, err)}
	}
	t := &Table{db: db, next: map[int32]int64{}, changed: make(chan struct{})}
	if err := t.load(readBy); err != nil {
		_ = db.Close()
		return nil, &TableError{Err: err}
	}
	return t, nil
}

// load reads a clean table's offsets and counts its keys, or empties a table that was not
// closed cleanly or was read by another readBy; then marks it not clean.
func (t *Table) load(readBy string) error {
	t.readBy = readBy
	clean, err := t.has(tableCleanKey, nil)
	if err != nil {
		return err
	}
	if clean {
		same, err := t.has(tableReadByKey, []byte(readBy))
		if err != nil {
			return err
		}
		clean, t.Reread = same, !same
	}
	if !clean {
		return t.empty()
	}
	it, err := t.db.NewIter(&pebble.IterOptions{LowerBound: []byte{0, 'o'}, UpperBound: []byte{0, 'p'}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if k, v := it.Key(), it.Value(); len(k) == 6 && len(v) == 8 {
			t.next[int32(binary.BigEndian.Uint32(k[2:]))] = int64(binary.BigEndian.Uint64(v))
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	n, err := t.count()
	if err != nil {
		return err
	}
	t.keys.Store(n)
	return t.db.Delete(tableCleanKey, pebble.Sync) // from now on a crash leaves it untrusted
}

// empty deletes every key and offset, keeping what the values are read by.
func (t *Table) empty() error {
	if err := t.db.DeleteRange([]byte{0}, []byte{2}, pebble.Sync); err != nil {
		return err
	}
	return t.db.Set(tableReadByKey, []byte(t.readBy), pebble.Sync)
}

// has reports that key is in the store, holding want when want is not nil.
func (t *Table) has(key, want []byte) (bool, error) {
	v, closer, err := t.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return want == nil || bytes.Equal(v, want), nil
}

func (t *Table) count() (int64, error) {
	it, err := t.db.NewIter(&pebble.IterOptions{LowerBound: []byte{1}, UpperBound: []byte{2}})
	if err != nil {
		return 0, err
	}
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, errors.Join(it.Error(), it.Close())
}

// Offsets are where each partition's reading goes on from: the offset after the last
// message applied (a partition never applied is not in it).
func (t *Table) Offsets() map[int32]int64 {
	out := make(map[int32]int64, len(t.next))
	for p, o := range t.next {
		out[p] = o
	}
	return out
}

// Forget empties the table: its topic was made again (a partition's end is below where the
// table is), so what it holds is gone.
func (t *Table) Forget() error {
	if err := t.empty(); err != nil {
		return &TableError{Err: err}
	}
	t.next = map[int32]int64{}
	t.keys.Store(0)
	t.notify()
	return nil
}

// Apply writes changes, in one batch, with the offsets they move their partitions to.
func (t *Table) Apply(changes []TableChange) error {
	if len(changes) == 0 {
		return nil
	}
	b := t.db.NewIndexedBatch()
	defer b.Close()
	var added int64
	wrote := false
	for _, c := range changes {
		if !c.Control {
			k := userKey(c.Key)
			_, closer, err := b.Get(k)
			had := err == nil
			if had {
				_ = closer.Close()
			} else if !errors.Is(err, pebble.ErrNotFound) {
				return &TableError{Err: err}
			}
			err = nil
			switch {
			case c.Value == nil && had:
				err, added = b.Delete(k, nil), added-1
			case c.Value != nil:
				err = b.Set(k, c.Value, nil)
				if !had {
					added++
				}
			}
			if err != nil {
				return &TableError{Err: err}
			}
			wrote = true
		}
		if err := b.Set(tableOffsetKey(c.Partition), binary.BigEndian.AppendUint64(nil, uint64(c.Offset+1)), nil); err != nil {
			return &TableError{Err: err}
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return &TableError{Err: err}
	}
	for _, c := range changes {
		t.next[c.Partition] = c.Offset + 1
	}
	t.keys.Add(added)
	if wrote {
		t.notify()
	}
	return nil
}

// notify wakes those waiting for a key.
func (t *Table) notify() {
	t.mu.Lock()
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// Changed is closed when a change is applied after the call: a reader waiting for a key
// takes it before looking, and looks again once it is closed.
func (t *Table) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// Get returns a copy of key's value, and whether the table has it.
func (t *Table) Get(key []byte) ([]byte, bool, error) {
	v, closer, err := t.db.Get(userKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, &TableError{Err: err}
	}
	out := bytes.Clone(v)
	return out, true, closer.Close()
}

// Keys is how many keys the table holds.
func (t *Table) Keys() int64 { return t.keys.Load() }

// Bytes is the table's size: its tables on disk and its memtables.
func (t *Table) Bytes() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0
	}
	m := t.db.Metrics()
	n := int64(m.MemTable.Size)
	for _, l := range m.Levels {
		n += l.TablesSize
	}
	return n
}

// Close closes the table; clean marks it as holding the topic up to its offsets (nothing
// failed while it was written), so that opening it again reads on from them.
func (t *Table) Close(clean bool) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	var err error
	if clean {
		err = t.db.Set(tableCleanKey, []byte{1}, pebble.Sync) // syncs the writes before it too
	}
	err = errors.Join(err, t.db.Close())
	if err != nil {
		return &TableError{Err: err}
	}
	return nil
}

// TableError is a table store that cannot be read or written (its disk): the pipeline's
// fault, so the pipeline stops.
type TableError struct{ Err error }

func (e *TableError) Error() string {
	return fmt.Sprintf("the table's store: %v (is state.dir on a disk with room, and writable?)", e.Err)
}
func (e *TableError) Unwrap() error { return e.Err }

// Stop makes the failure package judge it a stop.
func (e *TableError) Stop() {}
