package stages_test

import (
	"context"
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
