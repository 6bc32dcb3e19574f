package stages_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/stages"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// A dedupe remembers the time of its store's earliest key, not to look for keys to expire at
// every record; a transaction's changes dropped (an abort) may bring an earlier one back,
// which expires all the same.
func TestDedupeExpiresAfterAnAbort(t *testing.T) {
	p := build(t, "  - {name: once, type: dedupe, within: 1s}\n")
	st := p.StageByName("once").Impl
	stores := state.NewStores(state.Options{Transactional: true}, noChangelog{}, st.(stages.Stateful).Restore)
	defer func() { _ = stores.Close(context.Background(), false) }()
	st.(stages.Stateful).OpenState(stores)
	at := time.UnixMilli(1700000000000)
	feed := func(key string, after time.Duration) (passed bool, tombstones []string) {
		t.Helper()
		rec := &record.Record{Key: []byte(key), Topic: "in", Timestamp: at.Add(after), Offset: int64(after)}
		out, err := st.Process(context.Background(), rec, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			switch {
			case o.Port != stages.ChangelogPort:
				passed = true
			case o.Rec.Value == nil:
				tombstones = append(tombstones, string(o.Rec.Key))
			}
		}
		return passed, tombstones
	}
	feed("a", 0)
	if err := stores.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, gone := feed("b", 2*time.Second); len(gone) != 1 || gone[0] != "a" {
		t.Fatalf("a record 2 s on expired %v, not a", gone)
	}
	if err := stores.Discard(); err != nil { // a is back
		t.Fatal(err)
	}
	if _, gone := feed("c", 2100*time.Millisecond); len(gone) != 1 || gone[0] != "a" {
		t.Fatalf("after the abort, a record 2.1 s on expired %v, not a", gone)
	}
	if passed, _ := feed("a", 2200*time.Millisecond); !passed {
		t.Fatal("a, expired, was dropped as a duplicate")
	}
}

// An aggregate remembers its partition's stream time and the earliest end of its windows,
// not to look for windows to close at every record; a transaction's changes dropped may bring
// a closed window back, which closes all the same.
func TestAggregateClosesAfterAnAbort(t *testing.T) {
	p := build(t, "  - {name: agg, type: aggregate, window: {tumbling: 1s}, grace: 0s, aggregates: {n: count()}}\n")
	st := p.StageByName("agg").Impl
	stores := state.NewStores(state.Options{Transactional: true}, noChangelog{}, st.(stages.Stateful).Restore)
	defer func() { _ = stores.Close(context.Background(), false) }()
	st.(stages.Stateful).OpenState(stores)
	at := time.UnixMilli(1700000000000)
	feed := func(key string, after time.Duration) (closed []string) {
		t.Helper()
		rec := &record.Record{Key: []byte(key), Value: []byte(`{}`), Topic: "in", Timestamp: at.Add(after), Offset: int64(after)}
		out, err := st.Process(context.Background(), rec, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			if o.Port != stages.ChangelogPort {
				closed = append(closed, string(o.Rec.Key))
			}
		}
		return closed
	}
	feed("a", 0)
	if err := stores.Commit(); err != nil {
		t.Fatal(err)
	}
	if closed := feed("b", 1500*time.Millisecond); len(closed) != 1 || closed[0] != "a" {
		t.Fatalf("a record 1.5 s on closed %v, not a's window", closed)
	}
	if err := stores.Discard(); err != nil { // a's window is open again
		t.Fatal(err)
	}
	if closed := feed("c", 1600*time.Millisecond); len(closed) != 1 || closed[0] != "a" {
		t.Fatalf("after the abort, a record 1.6 s on closed %v, not a's window", closed)
	}
}

// A dedupe looks a key up only where its filter of the store's keys says it may be there. The
// filter, built as the store opens, grows as keys come, and is built anew from the store once
// it holds mostly keys that expired; a key written before, in the transaction under way or
// committed, is still a duplicate, filter or not.
func TestDedupeFilter(t *testing.T) {
	const n = 3100 // past a filter's first two parts: 1,024 and 2,048 keys here
	cases := []struct {
		name                  string
		within                string
		recent                int // the last keys fed again, each within its window
		transactional, noRoom bool
	}{
		{"at least once", "1h", n, false, false},
		{"exactly once", "1h", n, true, false},
		{"no room for a filter", "1h", n, false, true},            // every key looked up
		{"keys expiring: built anew", "200ms", 150, false, false}, // 200 keys live at a time
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := build(t, "  - {name: once, type: dedupe, within: "+c.within+"}\n")
			st := p.StageByName("once").Impl.(stages.Stateful)
			stages.SetDedupeFilterFirst(st, 1024)
			stores := state.NewStores(state.Options{Transactional: c.transactional, Count: st.Count}, noChangelog{}, st.Restore)
			defer func() { _ = stores.Close(context.Background(), false) }()
			if c.noRoom && !stores.Memory().Reserve(256<<10) { // all a 1 MiB budget keeps aside
				t.Fatal("a quarter of the state memory could not be reserved")
			}
			st.OpenState(stores)
			at := time.UnixMilli(1700000000000)
			passes := func(i, ms int) bool { // key i at ms, as offset ms
				t.Helper()
				rec := &record.Record{Key: fmt.Appendf(nil, "pay-%d", i), Topic: "in", Timestamp: at.Add(time.Duration(ms) * time.Millisecond), Offset: int64(ms)}
				out, err := st.Process(context.Background(), rec, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range out {
					if o.Port != stages.ChangelogPort {
						return true
					}
				}
				return false
			}
			for i := range n {
				if !passes(i, i) {
					t.Fatalf("key %d, new, was dropped", i)
				}
				if c.transactional && i == n/2 {
					if err := stores.Commit(); err != nil {
						t.Fatal(err)
					}
				}
			}
			dropped := 0
			for j := range c.recent {
				if !passes(n-c.recent+j, n+j) {
					dropped++
				}
			}
			if dropped != c.recent {
				t.Errorf("%d of %d duplicates dropped", dropped, c.recent)
			}
		})
	}
}
