package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func mustGet(t *testing.T, tb *Table, key string) (string, bool) {
	t.Helper()
	v, ok, err := tb.Get([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return string(v), ok
}

// A table keeps each key's latest value; a tombstone deletes it; markers move only the
// offsets; the keys are counted.
func TestTableApply(t *testing.T) {
	tb, err := OpenTable("", 1<<20, "json any")
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close(false)
	err = tb.Apply([]TableChange{
		{Partition: 0, Offset: 0, Key: []byte("c1"), Value: []byte(`{"n":1}`)},
		{Partition: 1, Offset: 0, Key: []byte("c2"), Value: []byte(`{"n":2}`)},
		{Partition: 0, Offset: 1, Key: []byte("c1"), Value: []byte(`{"n":3}`)}, // an update in the same batch
		{Partition: 1, Offset: 1, Key: []byte("c3"), Value: []byte(`{"n":4}`)},
		{Partition: 1, Offset: 2, Key: []byte("c3")},   // a tombstone
		{Partition: 1, Offset: 3, Key: []byte("gone")}, // a tombstone of nothing
		{Partition: 0, Offset: 2, Control: true},       // a commit marker
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := mustGet(t, tb, "c1"); !ok || v != `{"n":3}` {
		t.Errorf("c1 = %q %v, want the update", v, ok)
	}
	if _, ok := mustGet(t, tb, "c3"); ok {
		t.Error("c3 is there after its tombstone")
	}
	if n := tb.Keys(); n != 2 {
		t.Errorf("%d keys, want 2", n)
	}
	if o := tb.Offsets(); o[0] != 3 || o[1] != 4 {
		t.Errorf("offsets %v, want 0:3 1:4", o)
	}
	if tb.Bytes() <= 0 {
		t.Error("no bytes counted")
	}
}

// A table closed cleanly is read on from its offsets; one that was not (a crash) is emptied
// and read from the start.
func TestTableCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t")
	tb, err := OpenTable(dir, 1<<20, "json any")
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Apply([]TableChange{{Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(true); err != nil {
		t.Fatal(err)
	}

	tb, err = OpenTable(dir, 1<<20, "json any")
	if err != nil {
		t.Fatal(err)
	}
	if o := tb.Offsets(); len(o) != 1 || o[2] != 42 {
		t.Errorf("offsets after a clean close %v, want 2:42", o)
	}
	if v, ok := mustGet(t, tb, "k"); !ok || v != "v" || tb.Keys() != 1 {
		t.Errorf("k = %q %v, %d keys after a clean close", v, ok, tb.Keys())
	}
	if err := tb.Close(false); err != nil { // as a crash leaves it: not marked clean
		t.Fatal(err)
	}

	tb, err = OpenTable(dir, 1<<20, "json any")
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close(true)
	if o := tb.Offsets(); len(o) != 0 {
		t.Errorf("offsets after an unclean close %v, want none", o)
	}
	if _, ok := mustGet(t, tb, "k"); ok || tb.Keys() != 0 {
		t.Errorf("an unclean table kept its keys (%d)", tb.Keys())
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// Changed wakes a reader waiting for a key once a change is applied; Forget empties the table.
func TestTableChangedAndForget(t *testing.T) {
	tb, err := OpenTable("", 1<<20, "json any")
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close(false)
	ch := tb.Changed()
	go func() { // after the reader took its channel: the change must wake it
		_ = tb.Apply([]TableChange{{Partition: 0, Offset: 0, Key: []byte("late"), Value: []byte("1")}})
	}()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("not woken")
	}
	if _, ok := mustGet(t, tb, "late"); !ok {
		t.Error("the key is not there once woken")
	}
	if err := tb.Forget(); err != nil {
		t.Fatal(err)
	}
	if _, ok := mustGet(t, tb, "late"); ok || tb.Keys() != 0 || len(tb.Offsets()) != 0 {
		t.Error("Forget left keys or offsets")
	}
}

// A table read by another format or schema than its store's values were is emptied as it
// opens (Reread), and read from the start; Forget keeps what the values are read by.
func TestTableReadBy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t")
	reopen := func(readBy string, wantKeys int64, wantReread bool) *Table {
		t.Helper()
		tb, err := OpenTable(dir, 1<<20, readBy)
		if err != nil {
			t.Fatal(err)
		}
		if tb.Keys() != wantKeys || tb.Reread != wantReread {
			t.Errorf("opened by %q: %d keys, reread %v; want %d, %v", readBy, tb.Keys(), tb.Reread, wantKeys, wantReread)
		}
		return tb
	}
	apply := func(tb *Table, offset int64) {
		t.Helper()
		if err := tb.Apply([]TableChange{{Partition: 0, Offset: offset, Key: []byte("k"), Value: []byte("v")}}); err != nil {
			t.Fatal(err)
		}
	}
	tb := reopen("json any", 0, false)
	apply(tb, 0)
	tb.Close(true)
	tb = reopen("json any", 1, false)
	if err := tb.Forget(); err != nil {
		t.Fatal(err)
	}
	apply(tb, 1)
	tb.Close(true)
	tb = reopen("json any", 1, false) // Forget kept its readBy
	tb.Close(true)
	tb = reopen("avro subject=customers-value message= reader=writer's", 0, true)
	if o := tb.Offsets(); len(o) != 0 {
		t.Errorf("offsets %v after a reread, want none", o)
	}
	apply(tb, 0)
	tb.Close(true)
	reopen("avro subject=customers-value message= reader=writer's", 1, false).Close(true)
}
