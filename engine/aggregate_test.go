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

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/state"
)

const aggregatePipeline = `
version: 1
name: orders
source: {type: kafka, topics: [orders]}
stages:
  - name: parse
    type: decode
    schema: {customer: string, amount: int}
  - name: agg
    type: aggregate
    window: {tumbling: 1m}
    grace: 10s
    aggregates: {orders: count(), revenue: sum(msg.amount)}
sinks:
  - {name: out, type: kafka, topic: orders-per-minute}
dlq: {type: kafka, topic: orders-dlq}
`

// stageLogs keeps what a stage's changelog was written, per partition, and reads it back as
// a state.Changelog: the Kafka of the tests in memory.
type stageLogs struct {
	MemorySinks
	node string // the changelog's node: "<stage>.changelog"
	mu   sync.Mutex
	log  map[int32][][2][]byte
}

func (c *stageLogs) open(name string, sk sinks.Compiled, report sinks.Report) (sinks.Sink, error) {
	if name != c.node {
		return c.MemorySinks.Open(name, sk, report)
	}
	return c.MemorySinks.Open(name, sk, func(r *record.Record, err error) {
		if err == nil {
			c.mu.Lock()
			c.log[r.Partition] = append(c.log[r.Partition], [2][]byte{r.Key, r.Value})
			c.mu.Unlock()
		}
		report(r, err)
	})
}

func (c *stageLogs) End(_ context.Context, p int32) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(len(c.log[p])), nil
}

func (c *stageLogs) Read(_ context.Context, p int32, from, to int64, apply func(k, v []byte) error) error {
	c.mu.Lock()
	recs := append([][2][]byte(nil), c.log[p][from:to]...)
	c.mu.Unlock()
	for _, r := range recs {
		if err := apply(r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}

// run runs p over recs in memory, its stores under dir (with the changelog c keeps), and
// checks that every record was settled once.
func (c *stageLogs) run(t *testing.T, p *pipeline.Pipeline, dir string, recs []*record.Record, batch int) *Engine {
	t.Helper()
	c.MemorySinks = MemorySinks{}
	e, err := NewEngine(p, c.open, quiet)
	if err != nil {
		t.Fatal(err)
	}
	e.UseState(StateOptions{Dir: dir, CacheBytes: 1 << 20, Changelog: func(string) state.Changelog { return c }})
	src := &MemorySource{Records: recs, Batch: batch}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Run(ctx, src, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, twice := src.Settled(); n != len(recs) || twice {
		t.Fatalf("settled %d of %d (twice: %v)", n, len(recs), twice)
	}
	return e
}

func order(customer string, amount int, partition int32, offset int64, at string) *record.Record {
	ts, err := time.Parse(time.RFC3339, "2026-11-26T"+at+"Z")
	if err != nil {
		panic(err)
	}
	return &record.Record{Key: []byte(customer), Value: []byte(fmt.Sprintf(`{"customer": %q, "amount": %d}`, customer, amount)),
		Topic: "orders", Partition: partition, Offset: offset, Timestamp: ts}
}

// An aggregate's windows and its stream time survive a restart: restored from the changelog,
// a window opened before it is emitted once, with what came before and after, none emitted
// before is emitted again, and what was late before is late still — also where the stream
// time came from a record whose window is still open (no window had closed to write it).
func TestAggregateRestartsFromItsChangelog(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := mustParse(t, aggregatePipeline)
	logs := &stageLogs{node: "agg.changelog", log: map[int32][][2][]byte{}}
	dir := t.TempDir()
	run := func(recs []*record.Record) (windows, late []string, stats map[string]int64) {
		t.Helper()
		e := logs.run(t, p, dir, recs, 2)
		for _, r := range logs.Records("out") {
			w := written(t, r)
			windows = append(windows, fmt.Sprintf("%v %v-%v orders=%v revenue=%v @%d/%d", w["key"], w["window_start"], w["window_end"],
				w["orders"], w["revenue"], r.Partition, r.Offset))
			if len(w) != 5 {
				t.Errorf("window %v has other fields", w)
			}
		}
		for _, r := range logs.Records("dlq") {
			reason, _ := r.Header(dlq.HeaderError)
			if !strings.HasPrefix(string(reason), "late:") {
				t.Errorf("dead-lettered %s/%d@%d: %s", r.Key, r.Partition, r.Offset, reason)
			}
			late = append(late, fmt.Sprintf("%s@%d/%d", r.Key, r.Partition, r.Offset))
		}
		sort.Strings(windows)
		sort.Strings(late)
		return windows, late, e.Stats()["agg"].Stage
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %s\nwant %s", what, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	}

	windows, late, stats := run([]*record.Record{
		order("c1", 1, 0, 0, "10:00:05"),
		order("c2", 2, 0, 1, "10:00:30"),
		order("c3", 5, 1, 0, "10:05:00"), // partition 1's stream time: 10:05, no window closed
		order("c1", 3, 0, 2, "10:00:50"),
		order("c4", 6, 1, 1, "10:00:30"), // late on partition 1
		order("c1", 4, 0, 3, "10:01:20"), // closes 10:00 of c1 and c2 (end + grace 10:01:10)
		order("c1", 100, 0, 4, "10:00:55"),
	})
	check("first run's windows", windows, []string{
		"c1 2026-11-26T10:00:00Z-2026-11-26T10:01:00Z orders=2 revenue=4 @0/3",
		"c2 2026-11-26T10:00:00Z-2026-11-26T10:01:00Z orders=1 revenue=2 @0/3",
	})
	check("first run's late records", late, []string{"c1@0/4", "c4@1/1"})
	if stats["late_dlq"] != 2 || stats["windows_closed"] != 2 {
		t.Errorf("first run's numbers: %v", stats)
	}

	// The stores were never released (a memory source has no partitions): a crash, as far as
	// they know. The next run empties them and restores them from the changelog.
	windows, late, stats = run([]*record.Record{
		order("c1", 7, 0, 5, "10:00:58"), // late still: 10:01:20 was on the changelog
		order("c5", 7, 1, 2, "10:00:40"), // late still: 10:05 restored from c3's open window
		order("c2", 9, 0, 6, "10:01:05"),
		order("c1", 1, 0, 7, "10:02:30"), // closes 10:01 of c1 (from the first run) and c2
		order("c3", 8, 1, 3, "10:06:30"), // closes 10:05 of c3 (from the first run)
	})
	check("after a restart, windows", windows, []string{
		"c1 2026-11-26T10:01:00Z-2026-11-26T10:02:00Z orders=1 revenue=4 @0/7",
		"c2 2026-11-26T10:01:00Z-2026-11-26T10:02:00Z orders=1 revenue=9 @0/7",
		"c3 2026-11-26T10:05:00Z-2026-11-26T10:06:00Z orders=1 revenue=5 @1/3",
	})
	check("after a restart, late records", late, []string{"c1@0/5", "c5@1/2"})
	// The stage is the first run's (one parsed pipeline): its totals go on.
	if stats["late_dlq"] != 2+2 || stats["windows_closed"] != 2+3 || stats["restored"] == 0 {
		t.Errorf("second run's numbers: %v", stats)
	}
	// What the changelog says now: the windows still open (c1 10:02, c3 10:06), each
	// partition's stream time as of its last close.
	open := 0
	for p, log := range logs.log {
		last := map[string][]byte{}
		for _, kv := range log {
			last[string(kv[0])] = kv[1]
		}
		for k, v := range last {
			if k[0] == 'w' && v != nil {
				open++
			}
		}
		if last["m"] == nil {
			t.Errorf("partition %d's changelog has no stream time", p)
		}
	}
	if open != 2 {
		t.Errorf("the changelogs hold %d open windows, want 2", open)
	}
}
