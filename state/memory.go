package state

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Memory is what the stores of a run may hold in memory (state.cache), shared by all of
// them, every stateful stage's and table lookup's: the blocks they have read, and the
// writes they gather before writing them to disk (each store's memtables), which Pebble
// counts in the same cache. Memtables are sized from it (memtableFor), so that those of
// a few partitions leave most of it to blocks: with memtables of a fixed 4 MiB, 8
// partitions' (one filling and one kept for reuse each) took all of a 64 MiB cache, and
// every read went to disk and decompressed its block again.
//
// Beside it, the stages may keep a quarter as much again of what spares their stores
// lookups (Reserve: a dedupe's filters of its keys).
type Memory struct {
	cache    *pebble.Cache
	memtable uint64
	aside    atomic.Int64 // bytes Reserved
	asideMax int64
}

// NewMemory makes a budget of bytes (at least 1 MiB); Close it once the stores made with
// it are closed.
func NewMemory(bytes int64) *Memory {
	bytes = max(bytes, 1<<20)
	return &Memory{cache: pebble.NewCache(bytes), memtable: memtableFor(bytes), asideMax: bytes / 4}
}

// Reserve takes n bytes (n < 0 gives them back) for what a stage keeps beside its stores to
// spare them lookups, within a quarter of the budget: false, taking nothing, when they do not
// fit, and the stage looks its keys up in the stores instead.
func (m *Memory) Reserve(n int64) bool {
	for {
		used := m.aside.Load()
		if n > 0 && used+n > m.asideMax {
			return false
		}
		if m.aside.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// Close gives the budget's cache up; the stores still open keep it until they close.
func (m *Memory) Close() { m.cache.Unref() }

// memtableFor is a store's memtable in a budget of bytes: a 32nd of it, from 256 KiB to
// 4 MiB (2 MiB of the default 64 MiB). A store holds two at most but while one is written
// to disk, so 8 partitions' hold half the budget at most.
func memtableFor(bytes int64) uint64 {
	return uint64(min(max(bytes/32, 256<<10), 4<<20))
}

// options are a store's Pebble options in m. Its writes go to Pebble's log unsynced (a
// write is not waited for on disk: the changelog is the state's lasting copy), and the log
// is synced only with a store's marks (markClean, moveMark).
func (m *Memory) options() *pebble.Options {
	return &pebble.Options{Cache: m.cache, MemTableSize: m.memtable, MemTableStopWritesThreshold: 4, Logger: quiet{}}
}
