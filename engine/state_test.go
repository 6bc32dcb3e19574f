package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/state"
)

const dedupePipeline = `
version: 1
name: payments
source: {type: kafka, topics: [payments]}
stages:
  - name: parse
    type: decode
    schema: {payment_id: string, amount: float}
  - name: once
    type: dedupe
    key: msg.payment_id
    within: 1h
sinks:
  - {name: out, type: kafka, topic: payments-once}
`

func payment(id string, partition int32, offset int64, at time.Time) *record.Record {
	return &record.Record{Key: []byte("k"), Value: []byte(fmt.Sprintf(`{"payment_id": %q, "amount": 1}`, id)),
		Topic: "payments", Partition: partition, Offset: offset, Timestamp: at}
}

func TestDedupe(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := mustParse(t, dedupePipeline)
	t0 := time.Unix(1700000000, 0)
	logs := &stageLogs{node: "once.changelog", log: map[int32][][2][]byte{}}
	dir := t.TempDir()
	run := func(recs []*record.Record) []string {
		t.Helper()
		logs.run(t, p, dir, recs, 3)
		var ids []string
		for _, r := range logs.Records("out") {
			ids = append(ids, fmt.Sprintf("%s@%d/%d", written(t, r)["payment_id"], r.Partition, r.Offset))
		}
		return ids
	}

	got := run([]*record.Record{
		payment("a", 0, 0, t0), payment("b", 0, 1, t0), payment("a", 0, 2, t0.Add(time.Minute)), // a again: dropped
		payment("a", 1, 0, t0),                  // another partition's store: its own keys
		payment("b", 0, 3, t0.Add(2*time.Hour)), // b first seen 2h before: expired, passes again
	})
	want := []string{"a@0/0", "b@0/1", "a@1/0", "b@0/3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("first run passed %v, want %v", got, want)
	}

	// The stores were never released (a memory source has no partitions): a crash, as far as
	// they know. The next run empties them and restores them from the changelog.
	got = run([]*record.Record{
		payment("b", 0, 3, t0.Add(2*time.Hour)),             // read again after the crash: passes again, as it did
		payment("b", 0, 4, t0.Add(2*time.Hour+time.Minute)), // a duplicate of it
		payment("c", 0, 5, t0.Add(2*time.Hour)),
	})
	want = []string{"b@0/3", "c@0/5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a restart passed %v, want %v", got, want)
	}
	// a of partition 0 expired when b came at +2h: its tombstone is in the changelog.
	var tombstones int
	for _, ch := range logs.log[0] {
		if ch[1] == nil {
			tombstones++
		}
	}
	if tombstones != 2 { // a, then b's first entry
		t.Errorf("changelog of partition 0 has %d tombstones, want 2: %q", tombstones, logs.log[0])
	}
}

// heldSink acknowledges each record when its key's gate opens, in any order.
type heldSink struct {
	gates  map[string]chan struct{}
	report sinks.Report
	wg     sync.WaitGroup
}

func (h *heldSink) Write(_ context.Context, recs []*record.Record) error {
	for _, r := range recs {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			<-h.gates[string(r.Key)]
			h.report(r, nil)
		}()
	}
	return nil
}

func (h *heldSink) Close(context.Context) error { h.wg.Wait(); return nil }

// Under at-least-once a stateful stage's changes reach the changelog only once their
// records' outputs are acknowledged, and in the order the stage made them: a crash between
// the two then leaves no change whose output was lost.
func TestChangesFollowOutputs(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := mustParse(t, strings.Replace(dedupePipeline, "    key: msg.payment_id\n", "", 1))
	t0 := time.Unix(1700000000, 0)
	gates := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	var mu sync.Mutex
	var changes []string
	open := func(name string, sk sinks.Compiled, report sinks.Report) (sinks.Sink, error) {
		if name == "out" {
			return &heldSink{gates: gates, report: report}, nil
		}
		return (&MemorySinks{}).Open(name, sk, func(r *record.Record, err error) {
			if name == "once.changelog" {
				mu.Lock()
				changes = append(changes, string(r.Key))
				mu.Unlock()
			}
			report(r, err)
		})
	}
	e, err := NewEngine(p, open, quiet)
	if err != nil {
		t.Fatal(err)
	}
	recs := []*record.Record{payment("a", 0, 0, t0), payment("b", 0, 1, t0)}
	recs[0].Key, recs[1].Key = []byte("a"), []byte("b")
	src := &MemorySource{Records: recs, Batch: 1}
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background(), src, 5*time.Second) }()
	written := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), changes...)
	}
	waitFor(t, 10*time.Second, "both records through the dedupe", func() bool { return e.Stats()["once"].Emitted == 2 })
	close(gates["b"]) // b's output is acknowledged first
	waitFor(t, 10*time.Second, "b's output acknowledged", func() bool { return e.Stats()["out"].Acked == 1 })
	if got := written(); len(got) != 0 {
		t.Fatalf("changes %v written before a's output was acknowledged: b's must wait behind a's", got)
	}
	close(gates["a"])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := written(); fmt.Sprint(got) != "[a b]" {
		t.Errorf("changes written %v, want [a b]", got)
	}
	if n, twice := src.Settled(); n != 2 || twice {
		t.Errorf("settled %d (twice: %v)", n, twice)
	}
}

// Expiry scans from where the last one left off; a record older than that (out of order)
// lowers the mark, and its key still expires.
func TestDedupeExpiresBelowTheMark(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := mustParse(t, dedupePipeline)
	t0 := time.Unix(1700000000, 0)
	logs := &stageLogs{node: "once.changelog", log: map[int32][][2][]byte{}}
	e, err := NewEngine(p, logs.open, quiet)
	if err != nil {
		t.Fatal(err)
	}
	e.UseState(StateOptions{CacheBytes: 1 << 20, Changelog: func(string) state.Changelog { return logs }})
	recs := []*record.Record{
		payment("a", 0, 0, t0),
		payment("b", 0, 1, t0.Add(2*time.Hour)),    // a expires: the mark moves to +1h
		payment("z", 0, 2, t0.Add(30*time.Minute)), // older than the mark: lowers it
		payment("c", 0, 3, t0.Add(4*time.Hour)),    // z and b expire
		payment("z", 0, 4, t0.Add(4*time.Hour)),    // z passes again
	}
	src := &MemorySource{Records: recs, Batch: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Run(ctx, src, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, ch := range logs.log[0] {
		if ch[1] == nil {
			gone = append(gone, string(ch[0]))
		}
	}
	sort.Strings(gone)
	if fmt.Sprint(gone) != "[a b z]" {
		t.Errorf("expired %v, want [a b z]", gone)
	}
	if n := len(logs.Records("out")); n != 5 {
		t.Errorf("%d passed, want all 5", n)
	}
}
