package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// memLog is a changelog in memory: per partition, the changes in order, and a transaction
// open from an offset on (begin), which holds End back until it aborts.
type memLog struct {
	mu      sync.Mutex
	parts   map[int32][][2][]byte
	reads   int                      // records read by restores
	open    map[int32]int64          // where a transaction still open begins
	aborted map[int32]map[int64]bool // records of aborted transactions: Read skips them
	logEnds int                      // LogEnd calls
}

// begin opens a transaction in partition p: its records from here on, until abort.
func (m *memLog) begin(p int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.open == nil {
		m.open = map[int32]int64{}
	}
	m.open[p] = int64(len(m.parts[p]))
}

// abort ends p's open transaction, aborted: its records are skipped (the records written after
// it by others stay).
func (m *memLog) abort(p int32, offsets ...int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.aborted == nil {
		m.aborted = map[int32]map[int64]bool{}
	}
	if m.aborted[p] == nil {
		m.aborted[p] = map[int64]bool{}
	}
	for _, o := range offsets {
		m.aborted[p][o] = true
	}
	delete(m.open, p)
}

func (m *memLog) write(p int32, key, value []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.parts == nil {
		m.parts = map[int32][][2][]byte{}
	}
	m.parts[p] = append(m.parts[p], [2][]byte{key, value})
}

// End is the last stable offset: the start of the transaction open, if one is.
func (m *memLog) End(_ context.Context, p int32) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.open[p]; ok {
		return o, nil
	}
	return int64(len(m.parts[p])), nil
}

func (m *memLog) LogEnd(_ context.Context, p int32) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logEnds++
	return int64(len(m.parts[p])), nil
}

func (m *memLog) Read(_ context.Context, p int32, from, to int64, apply func(key, value []byte) error) error {
	m.mu.Lock()
	var recs [][2][]byte
	for o := from; o < to; o++ {
		if !m.aborted[p][o] {
			recs = append(recs, m.parts[p][o])
		}
	}
	m.reads += len(recs)
	m.mu.Unlock()
	for _, r := range recs {
		if err := apply(r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}

func plain(s *Store, key, value []byte) error { return s.Set(key, value) }

// set writes a change as a stage does: into the store, and into the changelog.
func set(t *testing.T, st *Store, log *memLog, key, value string) {
	t.Helper()
	var v []byte
	if value != "" {
		v = []byte(value)
	}
	if err := st.Set([]byte(key), v); err != nil {
		t.Fatal(err)
	}
	log.write(st.Partition(), []byte(key), v)
}

func get(t *testing.T, st *Store, key string) string {
	t.Helper()
	v, ok, err := st.Get([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "<none>"
	}
	return string(v)
}

func TestStoresRestore(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		clean     bool   // released with every change acknowledged
		deleteDir bool   // the state dir lost between runs
		ghost     bool   // a change written locally that never reached the changelog
		wantReads int    // changelog records read when opened again
		wantB     string // key b after reopening
	}{
		{name: "clean release reads only what came after", clean: true, wantReads: 1, wantB: "2"},
		{name: "a crash empties the store and reads the changelog from its start", wantReads: 4, wantB: "2"},
		{name: "a deleted state dir is rebuilt from the changelog alone", clean: true, deleteDir: true, wantReads: 4, wantB: "2"},
		{name: "a change the changelog never had is gone after a crash", ghost: true, wantReads: 4, wantB: "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			log := &memLog{}
			stores := NewStores(Options{Dir: dir, CacheBytes: 1 << 20}, log, plain)
			st, err := stores.Get(ctx, 3)
			if err != nil {
				t.Fatal(err)
			}
			set(t, st, log, "a", "1")
			set(t, st, log, "b", "1")
			set(t, st, log, "a", "")
			if tc.ghost {
				if err := st.Set([]byte("ghost"), []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if err := stores.Close(ctx, tc.clean); err != nil {
				t.Fatal(err)
			}
			log.write(3, []byte("b"), []byte("2")) // another instance went on while this one was away
			if tc.deleteDir {
				if err := os.RemoveAll(filepath.Join(dir, "3")); err != nil {
					t.Fatal(err)
				}
			}

			stores = NewStores(Options{Dir: dir, CacheBytes: 1 << 20}, log, plain)
			defer stores.Close(ctx, false)
			log.reads = 0
			st, err = stores.Get(ctx, 3)
			if err != nil {
				t.Fatal(err)
			}
			if log.reads != tc.wantReads {
				t.Errorf("read %d changelog records to open the store, want %d", log.reads, tc.wantReads)
			}
			if got := get(t, st, "b"); got != tc.wantB {
				t.Errorf("b = %s, want %s", got, tc.wantB)
			}
			if got := get(t, st, "a"); got != "<none>" {
				t.Errorf("a = %s, want it deleted", got)
			}
			if got := get(t, st, "ghost"); got != "<none>" {
				t.Errorf("ghost = %s, want it gone: the changelog never had it", got)
			}
			if s := stores.Stats(); s.Open != 1 || s.Restored != int64(tc.wantReads) {
				t.Errorf("stats = %+v", s)
			}
		})
	}
}

func TestStoresInMemoryAndScan(t *testing.T) {
	ctx := context.Background()
	log := &memLog{}
	stores := NewStores(Options{}, log, plain)
	defer stores.Close(ctx, true)
	st, err := stores.Get(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"t3", "t1", "k", "t2"} {
		set(t, st, log, k, "v"+k)
	}
	var seen []string
	if err := st.Scan([]byte("t"), []byte("u"), func(k, v []byte) bool {
		seen = append(seen, string(k)+"="+string(v))
		return len(seen) < 2
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != "t1=vt1" || seen[1] != "t2=vt2" {
		t.Errorf("scan = %v, want t1 and t2 in order, stopped there", seen)
	}
	other, err := stores.Get(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, other, "k"); got != "<none>" {
		t.Errorf("partition 1 sees partition 0's key: %s", got)
	}
}

// Under exactly-once a store holds what committed transactions changed: an aborted
// transaction's changes are dropped, and a store is never emptied, only read on.
func TestStoresTransactional(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := &memLog{}
	opts := Options{Dir: dir, CacheBytes: 1 << 20, Transactional: true}
	stores := NewStores(opts, log, plain)
	st, err := stores.Get(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	set(t, st, log, "a", "1")
	if err := stores.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := st.Set([]byte("b"), []byte("1")); err != nil { // its changelog write aborts with it
		t.Fatal(err)
	}
	if got := get(t, st, "b"); got != "1" {
		t.Errorf("b = %s within its transaction, want 1", got)
	}
	if err := stores.Discard(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, st, "b"); got != "<none>" {
		t.Errorf("b = %s after its transaction aborted, want none", got)
	}
	set(t, st, log, "c", "1") // never committed: the process dies
	if err := stores.Close(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Get([]byte("a")); err != ErrReleased {
		t.Errorf("a released store answers %v, want ErrReleased", err)
	}

	stores = NewStores(opts, log, plain)
	defer stores.Close(ctx, false)
	log.reads = 0
	st, err = stores.Get(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if log.reads != 2 { // read on from where it was opened: a (its own, again) and c
		t.Errorf("read %d changelog records, want 2", log.reads)
	}
	for k, want := range map[string]string{"a": "1", "b": "<none>", "c": "1"} {
		if got := get(t, st, k); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
}

// Under exactly-once a checkpoint after a commit moves the store's mark: a restart after a
// crash reads only the changelog after it, not everything since the store was opened.
func TestStoresCheckpoint(t *testing.T) {
	ctx := context.Background()
	log := &memLog{}
	opts := Options{Dir: t.TempDir(), CacheBytes: 1 << 20, Transactional: true}
	stores := NewStores(opts, log, plain)
	st, err := stores.Get(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		set(t, st, log, k, "1")
	}
	if err := errors.Join(stores.Commit(), stores.Checkpoint(ctx)); err != nil {
		t.Fatal(err)
	}
	set(t, st, log, "d", "1") // committed in the changelog, the process dies before its batch is
	if err := stores.Close(ctx, false); err != nil {
		t.Fatal(err)
	}
	stores = NewStores(opts, log, plain)
	defer stores.Close(ctx, false)
	log.reads = 0
	st, err = stores.Get(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if log.reads != 1 {
		t.Errorf("read %d changelog records after the checkpoint, want 1 (d)", log.reads)
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		if got := get(t, st, k); got != "1" {
			t.Errorf("%s = %s, want 1", k, got)
		}
	}
}

// Under exactly-once a store is restored only once no transaction is open in its changelog. A
// killed instance's stays open until the broker aborts it, and holds the last stable offset
// back at its start, hiding the changes committed after it by the instance that took the
// partition over: restored to that offset, a store would miss them (the aggregate crash test
// on real Kafka: windows counted short and emitted again).
func TestStoresWaitForOpenTransaction(t *testing.T) {
	ctx := context.Background()
	log := &memLog{}
	log.write(0, []byte("a"), []byte("1")) // the first owner's, committed
	log.begin(0)
	log.write(0, []byte("x"), []byte("1")) // the first owner's last, open: it was killed
	log.write(0, []byte("b"), []byte("1")) // the next owner's, committed after it
	// A third instance, with no state dir, opens the store.
	stores := NewStores(Options{Dir: t.TempDir(), CacheBytes: 1 << 20, Transactional: true}, log, plain)
	defer stores.Close(ctx, false)
	type opened struct {
		st  *Store
		err error
	}
	got := make(chan opened, 1)
	go func() {
		st, err := stores.Get(ctx, 0)
		got <- opened{st, err}
	}()
	// It has looked twice (refused, then again) and still waits.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		log.mu.Lock()
		asked := log.logEnds
		log.mu.Unlock()
		if asked >= 2 {
			break
		}
		select {
		case o := <-got:
			t.Fatalf("the store was opened (err %v) while a transaction was open in its changelog", o.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the store's changelog was not looked at again")
		}
	}
	if n := stores.Stats().Restoring; n != 1 {
		t.Errorf("%d stores restoring while one waits for its changelog, want 1 (/readyz answers 503 by it)", n)
	}
	log.abort(0, 1) // the broker aborts the killed instance's transaction
	var o opened
	select {
	case o = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the store was not opened once the transaction ended")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	if n := stores.Stats().Restoring; n != 0 {
		t.Errorf("%d stores restoring once the store is open, want 0", n)
	}
	for k, want := range map[string]string{"a": "1", "x": "<none>", "b": "1"} {
		if v := get(t, o.st, k); v != want {
			t.Errorf("%s = %s, want %s", k, v, want)
		}
	}
}
