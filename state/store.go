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

	"github.com/cockroachdb/pebble/v2"
)

// metaPrefix starts the keys a store keeps of itself; a stage's keys never start with it.
var metaPrefix = []byte{0}

// cleanKey holds, in a store released cleanly, the changelog offset it holds everything
// before.
var cleanKey = []byte{0, 'c', 'l', 'e', 'a', 'n'}

// Store is one input partition's state of one stage. Its methods are safe for concurrent
// use; a key's read and write are the caller's to keep in order (the engine sends a key's
// records to one worker).
type Store struct {
	db        *pebble.DB
	partition int32
}

// Partition is the input partition the store holds the state of.
func (s *Store) Partition() int32 { return s.partition }

// Get returns a copy of the value of key, and whether it is there.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(userKey(key))
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
	var err error
	if value == nil {
		err = s.db.Delete(userKey(key), pebble.NoSync)
	} else {
		err = s.db.Set(userKey(key), value, pebble.NoSync)
	}
	if err != nil {
		return &Error{Partition: s.partition, Err: err}
	}
	return nil
}

// Scan calls fn with the keys from lo up to hi (exclusive), in order, until fn returns false.
// The slices are valid only during the call.
func (s *Store) Scan(lo, hi []byte, fn func(key, value []byte) bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: userKey(lo), UpperBound: userKey(hi)})
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
	m := s.db.Metrics()
	n := int64(m.MemTable.Size)
	for _, l := range m.Levels {
		n += l.TablesSize
	}
	return n
}
