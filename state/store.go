// Package state keeps the state of stateful stages (dedupe): a store per input partition, a
// local Pebble database under the pipeline's state dir, backed by a compacted changelog topic
// in Kafka from which a lost, deleted or stale store is rebuilt.
//
// A store is the changelog's last value per key, plus whatever indexes its stage derives from
// them (a dedupe keeps its keys by time, to expire them): the changelog carries the stage's
// keys only, and restoring one calls the stage's Restore to write what derives from it.
//
// What a store holds after a crash is not trusted: a change written locally may not have
// reached the changelog. So a store is marked clean only when it is released with every
// change of its partition acknowledged (the partition's records all done), with the
// changelog's end offset at that moment; opening a clean store reads the changelog on from
// there, opening any other empties it and reads the changelog from its start.
package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// metaPrefix starts the keys a store keeps of itself; a stage's keys never start with it.
var metaPrefix = []byte{0}

// cleanKey holds, in a store released cleanly, the changelog offset it holds everything
// before.
var cleanKey = []byte{0, 'c', 'l', 'e', 'a', 'n'}

// Store is one input partition's state of one stage. Its methods are safe for concurrent
// use; a key's read and write are the caller's to keep in order (the engine sends a key's
// records to one worker). Once released, its methods return ErrReleased: the caller asks
// the Stores for the partition's store again.
//
// Under exactly-once a store's changes gather in a batch of the open transaction, read
// through by Get and Scan, and reach the database only when the transaction commits.
type Store struct {
	partition int32
	mu        sync.RWMutex // held for writing to close the store and to end its batch
	db        *pebble.DB   // nil once released
	batch     *pebble.Batch
	keys      atomic.Int64 // as the stage counts them (AddKeys), committed
	pending   int64        // counted in the open batch
	gen       atomic.Uint64
}

// Generation changes whenever what the store holds may have gone back (a transaction's
// changes dropped). What a stage remembers of a store beside it, to spare reading it
// again, holds while it is the same store in the same generation.
func (s *Store) Generation() uint64 { return s.gen.Load() }

// Keys is how many keys the stage counts in the store.
func (s *Store) Keys() int64 { return s.keys.Load() }

// AddKeys counts n keys more (or fewer, n < 0); under exactly-once they count once their
// transaction commits.
func (s *Store) AddKeys(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch != nil {
		s.pending += n
		return
	}
	s.keys.Add(n)
}

// ErrReleased is a store used after its partition's store was released (the partition left
// the instance, or its store is read again from the changelog): ask for it again.
var ErrReleased = errors.New("state: the partition's store was released")

// Partition is the input partition the store holds the state of.
func (s *Store) Partition() int32 { return s.partition }

type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// view is what reads go to: the transaction's batch, which reads through to the database,
// or the database.
func (s *Store) view() reader {
	if s.batch != nil {
		return s.batch
	}
	return s.db
}

// Get returns a copy of the value of key, and whether it is there.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, false, ErrReleased
	}
	v, closer, err := s.view().Get(userKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, &Error{Partition: s.partition, Err: err}
	}
	out := bytes.Clone(v)
	return out, true, closer.Close()
}

// Set writes key's value; nil deletes it. Changes are not synced one by one: a crash loses
// them or not, and the store is rebuilt from its changelog then anyway.
func (s *Store) Set(key, value []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrReleased
	}
	var w interface {
		Set(k, v []byte, o *pebble.WriteOptions) error
		Delete(k []byte, o *pebble.WriteOptions) error
	} = s.db
	if s.batch != nil {
		w = s.batch
	}
	var err error
	if value == nil {
		err = w.Delete(userKey(key), pebble.NoSync)
	} else {
		err = w.Set(userKey(key), value, pebble.NoSync)
	}
	if err != nil {
		return &Error{Partition: s.partition, Err: err}
	}
	return nil
}

// Change is a key's new value; a nil value deletes the key.
type Change struct{ Key, Value []byte }

// Apply writes changes, in order, in one write: a record's changes cost one commit of the
// database, not one each.
func (s *Store) Apply(changes ...Change) error {
	if len(changes) == 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrReleased
	}
	b := s.batch
	if b == nil {
		b = s.db.NewBatch()
		defer b.Close()
	}
	var err error
	for _, c := range changes {
		if c.Value == nil {
			err = b.Delete(userKey(c.Key), nil)
		} else {
			err = b.Set(userKey(c.Key), c.Value, nil)
		}
		if err != nil {
			return &Error{Partition: s.partition, Err: err}
		}
	}
	if s.batch == nil {
		if err := b.Commit(pebble.NoSync); err != nil {
			return &Error{Partition: s.partition, Err: err}
		}
	}
	return nil
}

// Scan calls fn with the keys from lo up to hi (exclusive), in order, until fn returns false.
// The slices are valid only during the call.
func (s *Store) Scan(lo, hi []byte, fn func(key, value []byte) bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrReleased
	}
	it, err := s.view().NewIter(&pebble.IterOptions{LowerBound: userKey(lo), UpperBound: userKey(hi)})
	if err != nil {
		return &Error{Partition: s.partition, Err: err}
	}
	for ok := it.First(); ok; ok = it.Next() {
		if !fn(it.Key()[1:], it.Value()) {
			break
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return &Error{Partition: s.partition, Err: err}
	}
	return nil
}

// endBatch ends the transaction's batch, writing it (commit) or dropping it, and opens the
// next one.
func (s *Store) endBatch(commit bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil || s.batch == nil {
		return nil
	}
	var err error
	if commit && !s.batch.Empty() {
		err = s.batch.Commit(pebble.NoSync)
	}
	if commit && err == nil {
		s.keys.Add(s.pending)
	} else {
		s.gen.Add(1)
	}
	s.pending = 0
	err = errors.Join(err, s.batch.Close())
	s.batch = s.db.NewIndexedBatch()
	if err != nil {
		return &Error{Partition: s.partition, Err: err}
	}
	return nil
}

// close closes the database; what the open batch holds is dropped.
func (s *Store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	var err error
	if s.batch != nil {
		err = s.batch.Close()
		s.batch = nil
	}
	err = errors.Join(err, s.db.Close())
	s.db = nil
	return err
}

// userKey is a stage's key in the database: after a byte that no meta key has.
func userKey(k []byte) []byte { return append([]byte{1}, k...) }

// markDirty records that the store may from now on hold changes the changelog does not.
func (s *Store) markDirty() error {
	return s.db.Delete(cleanKey, pebble.Sync)
}

// markClean records that the store holds the changelog up to end, and nothing else.
func (s *Store) markClean(end int64) error {
	return s.db.Set(cleanKey, binary.BigEndian.AppendUint64(nil, uint64(end)), pebble.Sync)
}

// moveMark marks an open store as holding the changelog up to end, unless it was released
// meanwhile. The write is synced, and with it every change before it (Pebble's log is one).
func (s *Store) moveMark(end int64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil
	}
	return s.markClean(end)
}

// cleanAt is where a clean store's changelog reading goes on from; ok false when the store
// was not released cleanly.
func (s *Store) cleanAt() (int64, bool, error) {
	v, closer, err := s.db.Get(cleanKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, nil
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// empty removes every key: the store is about to be read again from its changelog.
func (s *Store) empty() error {
	return s.db.DeleteRange([]byte{1}, []byte{2}, pebble.Sync)
}

// bytes is the store's size: its tables on disk and its memtables.
func (s *Store) bytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return 0
	}
	m := s.db.Metrics()
	n := int64(m.MemTable.Size)
	for _, l := range m.Levels {
		n += l.TablesSize
	}
	return n
}
