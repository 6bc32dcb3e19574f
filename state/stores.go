package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Changelog is a store's topic as the stores read it: a compacted topic with a partition per
// input partition, written by the stage's changes as its records go.
type Changelog interface {
	// End is the offset after the last record of partition: what a store restored up to it
	// holds all of.
	End(ctx context.Context, partition int32) (int64, error)
	// Read calls apply for the records of partition from offset from up to to (exclusive),
	// in order; value is nil for a tombstone.
	Read(ctx context.Context, partition int32, from, to int64, apply func(key, value []byte) error) error
}

// Restore writes into a store what one changelog record says: the value of its key, and what
// the stage derives from it (dedupe: its index by time). value is nil for a deleted key.
type Restore func(s *Store, key, value []byte) error

// Options are a stage's stores' settings.
type Options struct {
	Dir string // the stage's folder, a database per partition below it; "" keeps them in memory
	// Memory is the run's stores' memory, shared with its other stages'; nil: the stage's
	// own, of CacheBytes.
	Memory     *Memory
	CacheBytes int64
	Log        *slog.Logger
	// Transactional keeps each store's changes in a batch until Commit (delivery:
	// exactly_once): a store then holds only what committed transactions changed, all of it
	// in the changelog, so that it is read on from where it was opened, never emptied.
	Transactional bool
	// Count, when set, counts the keys of a store just opened (Store.Keys goes on from it).
	Count func(*Store) (int64, error)
}

// Stores are one stage's stores, a store per input partition, opened (and restored) on first
// use and released when the partition leaves the instance.
type Stores struct {
	opts      Options
	changelog Changelog
	restore   Restore
	memory    *Memory
	ownMemory bool   // made by NewStores, closed by Close
	memFS     vfs.FS // the in-memory file system when Dir is ""

	mu      sync.Mutex
	open    map[int32]*Store
	opening map[int32]chan struct{} // closed when the partition's store is open (or failed)
	openErr map[int32]error

	restoring atomic.Int64 // partitions being restored now
	restored  atomic.Int64 // changelog records applied by restores
	restoreNs atomic.Int64 // time spent restoring
}

// Memory is the memory the stores are kept in.
func (s *Stores) Memory() *Memory { return s.memory }

// NewStores prepares a stage's stores; nothing is opened until a partition is asked for.
func NewStores(opts Options, changelog Changelog, restore Restore) *Stores {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Stores{opts: opts, changelog: changelog, restore: restore, memory: opts.Memory,
		open: map[int32]*Store{}, opening: map[int32]chan struct{}{}, openErr: map[int32]error{}}
	if s.memory == nil {
		s.memory, s.ownMemory = NewMemory(opts.CacheBytes), true
	}
	if opts.Dir == "" {
		s.memFS = vfs.NewMem()
	}
	return s
}

// Get returns partition's store, opening and restoring it first when it is not open: the
// caller waits for the restore (the partition's records cannot be processed before).
func (s *Stores) Get(ctx context.Context, partition int32) (*Store, error) {
	for {
		s.mu.Lock()
		if st := s.open[partition]; st != nil {
			s.mu.Unlock()
			return st, nil
		}
		if wait, ok := s.opening[partition]; ok {
			s.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			s.mu.Lock()
			err := s.openErr[partition]
			delete(s.openErr, partition)
			s.mu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		}
		done := make(chan struct{})
		s.opening[partition] = done
		s.mu.Unlock()

		st, err := s.openWaiting(ctx, partition)
		s.mu.Lock()
		delete(s.opening, partition)
		if err == nil {
			s.open[partition] = st
		} else {
			s.openErr[partition] = err
		}
		s.mu.Unlock()
		close(done)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
}

// openWaiting opens partition's store, waiting while its changelog cannot be read (Kafka
// away, a topic just made): the world's fault, which records wait out.
func (s *Stores) openWaiting(ctx context.Context, partition int32) (*Store, error) {
	// Restoring for /readyz and the progress line from the first attempt to the store's
	// opening, the waits between attempts included: the partition's records wait all along.
	s.restoring.Add(1)
	defer s.restoring.Add(-1)
	for failures := 1; ; failures++ {
		st, err := s.openStore(ctx, partition)
		var ce *changelogError
		if err == nil || !errors.As(err, &ce) {
			return st, err
		}
		if failures == 1 || failures%10 == 0 {
			s.opts.Log.Warn("cannot read a store's changelog; its partition's records wait", "partition", partition, "failures", failures, "err", err)
		}
		select {
		case <-time.After(min(time.Duration(failures)*200*time.Millisecond, 5*time.Second)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// openStore opens partition's database and brings it to the changelog's end.
func (s *Stores) openStore(ctx context.Context, partition int32) (*Store, error) {
	opts := s.memory.options()
	opts.FS = s.memFS
	dir := s.dir(partition)
	if s.memFS == nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, &Error{Partition: partition, Err: err}
		}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, &Error{Partition: partition, Err: fmt.Errorf("opening %s: %w", dir, err)}
	}
	st := &Store{db: db, partition: partition}
	if err := s.catchUp(ctx, st); err != nil {
		_ = db.Close()
		return nil, err
	}
	return st, nil
}

func (s *Stores) dir(partition int32) string {
	return filepath.Join(s.opts.Dir, strconv.Itoa(int(partition)))
}

// catchUp brings st to the changelog's end: from where a clean store left off, or from the
// start into an emptied store.
func (s *Stores) catchUp(ctx context.Context, st *Store) error {
	began := time.Now()
	defer func() { s.restoreNs.Add(int64(time.Since(began))) }()
	from, clean, err := st.cleanAt()
	if err != nil {
		return fmt.Errorf("state: reading partition %d's checkpoint: %w", st.partition, err)
	}
	if !clean {
		from = 0
		if err := st.empty(); err != nil {
			return &Error{Partition: st.partition, Err: err}
		}
	}
	if !s.opts.Transactional {
		// From here on a crash may leave changes the changelog never had: not to be trusted.
		if err := st.markDirty(); err != nil {
			return &Error{Partition: st.partition, Err: err}
		}
	}
	end, err := s.settledEnd(ctx, st.partition)
	if err != nil {
		return err
	}
	if from > end { // the changelog was deleted and made again: what the store holds is gone
		s.opts.Log.Warn("a store is ahead of its changelog (was the topic made again?); restoring it from the changelog alone",
			"partition", st.partition, "store_at", from, "changelog_end", end)
		from = 0
		if err := st.empty(); err != nil {
			return err
		}
	}
	if from == end {
		return s.opened(st, end)
	}
	s.opts.Log.Info("restoring a store from its changelog", "partition", st.partition, "from", from, "to", end, "clean", clean)
	n := int64(0)
	var local error
	err = s.changelog.Read(ctx, st.partition, from, end, func(key, value []byte) error {
		n++
		s.restored.Add(1)
		local = s.restore(st, key, value)
		return local
	})
	switch {
	case local != nil:
		return &Error{Partition: st.partition, Err: local}
	case err != nil: // read again from the start: the store is not clean any more
		return &changelogError{fmt.Errorf("state: restoring partition %d from its changelog: %w", st.partition, err)}
	}
	s.opts.Log.Info("store restored", "partition", st.partition, "records", n, "took", time.Since(began).Round(time.Millisecond))
	return s.opened(st, end)
}

// opened readies a store brought to the changelog's end. A transactional store holds only
// committed changes, all in the changelog after end: it is read on from end next time,
// whatever happens meanwhile; its changes gather in a batch.
func (s *Stores) opened(st *Store, end int64) error {
	if s.opts.Count != nil {
		n, err := s.opts.Count(st)
		if err != nil {
			return err
		}
		st.keys.Store(n)
	}
	if !s.opts.Transactional {
		return nil
	}
	if err := st.markClean(end); err != nil {
		return &Error{Partition: st.partition, Err: err}
	}
	st.batch = st.db.NewIndexedBatch()
	return nil
}

// Commit keeps what the stores' batches hold: the transaction they belong to committed.
func (s *Stores) Commit() error { return s.endBatches(true) }

// Checkpoint moves the mark of every open store of a transactional stage to its changelog's
// end, so that a restart after a crash reads on from there rather than from where the store
// was opened. Call it right after a commit (the stores' batches are written), while this
// instance owns the partitions: no one else writes their changelogs then, so the end is
// what the store holds.
func (s *Stores) Checkpoint(ctx context.Context) error {
	if !s.opts.Transactional {
		return nil
	}
	s.mu.Lock()
	open := make([]*Store, 0, len(s.open))
	for _, st := range s.open {
		open = append(open, st)
	}
	s.mu.Unlock()
	var err error
	for _, st := range open {
		end, e := s.changelog.End(ctx, st.partition)
		if e == nil {
			e = st.moveMark(end)
		}
		err = errors.Join(err, e)
	}
	return err
}

// Discard drops what the stores' batches hold: the transaction they belong to aborted.
func (s *Stores) Discard() error { return s.endBatches(false) }

func (s *Stores) endBatches(commit bool) error {
	s.mu.Lock()
	open := make([]*Store, 0, len(s.open))
	for _, st := range s.open {
		open = append(open, st)
	}
	s.mu.Unlock()
	var err error
	for _, st := range open {
		err = errors.Join(err, st.endBatch(commit))
	}
	return err
}

// Release closes partition's store, which leaves the instance. With clean (every change of
// the partition acknowledged by the changelog) it is marked as holding the changelog up to
// its end now, so that opening it again reads only what came after.
func (s *Stores) Release(ctx context.Context, partition int32, clean bool) error {
	s.mu.Lock()
	st := s.open[partition]
	delete(s.open, partition)
	s.mu.Unlock()
	if st == nil {
		return nil
	}
	return s.close(ctx, st, clean)
}

func (s *Stores) close(ctx context.Context, st *Store, clean bool) error {
	var err error
	if clean {
		var end int64
		if end, err = s.changelog.End(ctx, st.partition); err == nil {
			err = st.markClean(end)
		}
		if err != nil {
			s.opts.Log.Warn("a store could not be marked clean: it will be restored in full next time", "partition", st.partition, "err", err)
		}
	}
	return errors.Join(err, st.close())
}

// ReleaseAll releases every open store, as Release, and says which partitions' they were.
func (s *Stores) ReleaseAll(ctx context.Context, clean bool) ([]int32, error) {
	s.mu.Lock()
	open := s.open
	s.open = map[int32]*Store{}
	s.mu.Unlock()
	var err error
	var parts []int32
	for p, st := range open {
		parts = append(parts, p)
		err = errors.Join(err, s.close(ctx, st, clean))
	}
	return parts, err
}

// Close releases every open store, as Release; the stores are not used again.
func (s *Stores) Close(ctx context.Context, clean bool) error {
	_, err := s.ReleaseAll(ctx, clean)
	if s.ownMemory {
		s.memory.Close()
	}
	return err
}

// Stats are what the stores report.
type Stats struct {
	Open      int     // partitions whose store is open
	Restoring int     // partitions being restored now
	Restored  int64   // changelog records applied by restores
	RestoreS  float64 // seconds spent restoring
	Bytes     int64   // the open stores' size on disk and in memtables
	Keys      int64   // the open stores' keys, as their stage counts them
}

// Stats reads the stores' numbers.
func (s *Stores) Stats() Stats {
	s.mu.Lock()
	open := make([]*Store, 0, len(s.open))
	for _, st := range s.open {
		open = append(open, st)
	}
	s.mu.Unlock()
	st := Stats{Open: len(open), Restoring: int(s.restoring.Load()), Restored: s.restored.Load(),
		RestoreS: time.Duration(s.restoreNs.Load()).Seconds()}
	for _, o := range open {
		st.Bytes += o.bytes()
		st.Keys += o.Keys()
	}
	return st
}

// Error is a store that cannot be read or written (its disk): the pipeline's fault, so the
// pipeline stops (Stop) rather than dead-letter records it cannot judge.
type Error struct {
	Partition int32
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("the store of partition %d: %v (is state.dir on a disk with room, and writable?)", e.Partition, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// Stop makes the failure package judge it a stop.
func (e *Error) Stop() {}

// changelogError is a changelog that cannot be read now: waited out.
type changelogError struct{ err error }

func (e *changelogError) Error() string { return e.err.Error() }
func (e *changelogError) Unwrap() error { return e.err }

// quiet keeps Pebble's own logging (compactions, WAL recycling) out of the pipeline's log;
// its fatal errors still end the process, as Pebble requires.
type quiet struct{}

func (quiet) Infof(string, ...any)           {}
func (quiet) Errorf(string, ...any)          {}
func (quiet) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
