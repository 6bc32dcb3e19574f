package stages_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/stages"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// noChangelog is an empty changelog: stores start empty.
type noChangelog struct{}

func (noChangelog) End(context.Context, int32) (int64, error) { return 0, nil }
func (noChangelog) Read(context.Context, int32, int64, int64, func(k, v []byte) error) error {
	return nil
}

// aggRun feeds records to an aggregate with its stores in memory and says what each did:
// the windows it emitted, its changelog writes, or its error.
type aggRun struct {
	t      *testing.T
	p      *pipeline.Pipeline
	stage  stages.Stage
	offset int64
}

func newAggRun(t *testing.T, fields string) *aggRun {
	t.Helper()
	p := build(t, "  - {name: d, type: decode, schema: {k: string, x: 'int?', at: time}}\n  - name: agg\n    type: aggregate\n"+fields)
	st := p.StageByName("agg").Impl
	sf := st.(stages.Stateful)
	stores := state.NewStores(state.Options{}, noChangelog{}, sf.Restore)
	t.Cleanup(func() { _ = stores.Close(context.Background(), false) })
	sf.OpenState(stores)
	return &aggRun{t: t, p: p, stage: st}
}

var base = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// feed passes a record of key k at base+at (event time) with x (0: null) and describes its
// outputs, windows as "k 10:00:00-10:01:00 n=2 sum=5", or its error.
func (r *aggRun) feed(k string, at time.Duration, x int) string {
	r.t.Helper()
	xs := "null"
	if x != 0 {
		xs = fmt.Sprint(x)
	}
	ts := base.Add(at)
	body := fmt.Sprintf(`{"k": %q, "x": %s, "at": %q}`, k, xs, ts.Format(time.RFC3339Nano))
	rec := &record.Record{Key: []byte(k), Value: []byte(body), Topic: "in", Offset: r.offset, Timestamp: ts}
	r.offset++
	var out []stages.Output
	var err error
	if out, err = runRecord(r.t, r.p, rec, "d"); err != nil {
		r.t.Fatal(err)
	}
	out, err = r.stage.Process(context.Background(), out[0].Rec, nil)
	if err != nil {
		return "error: " + err.Error()
	}
	var got []string
	for _, o := range out {
		if o.Port == stages.ChangelogPort {
			continue
		}
		m := o.Rec.Msg.(map[string]any)
		line := fmt.Sprintf("%v %s-%s", m["key"], m["window_start"].(time.Time).Format("15:04:05"), m["window_end"].(time.Time).Format("15:04:05"))
		for _, f := range []string{"n", "sum", "first", "last", "low", "distinct"} {
			if v, ok := m[f]; ok {
				line += fmt.Sprintf(" %s=%v", f, v)
			}
		}
		if o.Rec.Timestamp != m["window_end"] || string(o.Rec.Key) != m["key"] || o.Rec.Offset != rec.Offset {
			r.t.Errorf("window %s: its record has timestamp %v, key %q, offset %d", line, o.Rec.Timestamp, o.Rec.Key, o.Rec.Offset)
		}
		got = append(got, line)
	}
	return strings.Join(got, "; ")
}

func TestAggregateSemantics(t *testing.T) {
	const s, m = time.Second, time.Minute
	type step struct {
		k    string
		at   time.Duration
		x    int
		want string
	}
	cases := []struct {
		name, fields string
		steps        []step
	}{
		{"tumbling: a window is emitted once stream time passes its end", `
    window: {tumbling: 1m}
    aggregates: {n: count(), sum: sum(msg.x)}
`, []step{
			{"a", 5 * s, 2, ""},
			{"b", 30 * s, 3, ""},
			{"a", 59 * s, 4, ""},
			{"a", 60 * s, 1, "a 10:00:00-10:01:00 n=2 sum=6; b 10:00:00-10:01:00 n=1 sum=3"},
			{"a", 61 * s, 0, ""},
			{"a", 2 * m, 0, "a 10:01:00-10:02:00 n=2 sum=1"},
		}},
		{"grace: a window takes records until its end plus grace, then they are late", `
    window: {tumbling: 1m}
    grace: 10s
    aggregates: {n: count()}
`, []step{
			{"a", 50 * s, 1, ""},
			{"a", 65 * s, 1, ""},
			{"a", 55 * s, 1, ""}, // stream time 65 s: within grace
			{"a", 70 * s, 1, "a 10:00:00-10:01:00 n=2"},
			{"a", 59 * s, 1, "error: late: event time 2026-11-26T10:00:59.000Z falls in windows closed by stream time 2026-11-26T10:01:10.000Z (the latest ended at 2026-11-26T10:01:00.000Z; grace 10s)"},
			{"b", 59 * s, 1, "error: late: event time 2026-11-26T10:00:59.000Z falls in windows closed by stream time 2026-11-26T10:01:10.000Z (the latest ended at 2026-11-26T10:01:00.000Z; grace 10s)"},
			{"a", 3 * m, 1, "a 10:01:00-10:02:00 n=2"},
		}},
		{"late: drop drops it, and closes windows all the same", `
    window: {tumbling: 1m}
    late: drop
    aggregates: {n: count()}
`, []step{
			{"a", 50 * s, 1, ""},
			{"b", 90 * s, 1, "a 10:00:00-10:01:00 n=1"},
			{"a", 10 * s, 1, ""},
			{"b", 3 * m, 1, "b 10:01:00-10:02:00 n=1"},
		}},
		{"hopping: a record in each window that holds it; a late one only in those still open", `
    window: {hopping: {size: 2m, advance: 1m}}
    aggregates: {n: count(), sum: sum(msg.x)}
`, []step{
			{"a", 30 * s, 1, ""},                              // [09:59, 10:01) and [10:00, 10:02)
			{"a", 90 * s, 2, "a 09:59:00-10:01:00 n=1 sum=1"}, // [10:00, 10:02) and [10:01, 10:03)
			{"a", 40 * s, 4, ""},                              // [09:59, 10:01) closed: only [10:00, 10:02)
			{"a", 3 * m, 8, "a 10:00:00-10:02:00 n=3 sum=7; a 10:01:00-10:03:00 n=1 sum=2"},
		}},
		{"session: records within gap make one; a record between two sessions merges them", `
    window: {session: {gap: 30s}}
    grace: 30s
    aggregates: {n: count(), first: first(msg.x), last: last(msg.x)}
`, []step{
			{"a", 0, 1, ""},
			{"a", 20 * s, 2, ""}, // [10:00:00, 10:00:50)
			{"a", 70 * s, 3, ""}, // 50 s after: a session of its own, [10:01:10, 10:01:40)
			{"b", 75 * s, 9, ""},
			{"a", 45 * s, 4, ""}, // overlaps both: [10:00:00, 10:01:40)
			{"a", 3 * m, 5, "a 10:00:00-10:01:40 n=4 first=1 last=3; b 10:01:15-10:01:45 n=1 first=9 last=9"},
		}},
		{"session: a record too late for any session is late", `
    window: {session: {gap: 30s}}
    grace: 5s
    aggregates: {n: count()}
`, []step{
			{"a", 0, 1, ""},
			{"a", 2 * m, 1, "a 10:00:00-10:00:30 n=1"},
			{"a", 10 * s, 1, "error: late: event time 2026-11-26T10:00:10.000Z falls in windows closed by stream time 2026-11-26T10:02:00.000Z (the latest ended at 2026-11-26T10:00:40.000Z; grace 5s)"},
			{"a", 100 * s, 1, ""}, // its own session [10:01:40, 10:02:10) still open: it merges into the one at 10:02
			{"a", 5 * m, 1, "a 10:01:40-10:02:30 n=2"},
		}},
		{"emit updates: the window at each record that changes it, nothing at its close", `
    window: {tumbling: 1m}
    emit: updates
    aggregates: {n: count(), sum: sum(msg.x), low: min(msg.x), distinct: count_distinct(msg.x)}
`, []step{
			{"a", 5 * s, 2, "a 10:00:00-10:01:00 n=1 sum=2 low=2 distinct=1"},
			{"a", 6 * s, 0, "a 10:00:00-10:01:00 n=2 sum=2 low=2 distinct=1"},
			{"a", 7 * s, 2, "a 10:00:00-10:01:00 n=3 sum=4 low=2 distinct=1"},
			{"a", 65 * s, 1, "a 10:01:00-10:02:00 n=1 sum=1 low=1 distinct=1"},
			{"a", 10 * s, 1, "error: late: event time 2026-11-26T10:00:10.000Z falls in windows closed by stream time 2026-11-26T10:01:05.000Z (the latest ended at 2026-11-26T10:01:00.000Z; grace 0s)"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newAggRun(t, c.fields)
			for i, st := range c.steps {
				if got := r.feed(st.k, st.at, st.x); got != st.want {
					t.Errorf("record %d (%s at +%v):\n got %s\nwant %s", i, st.k, st.at, got, st.want)
				}
			}
		})
	}
}

// A late record is its own fault: the failure table dead-letters it, with a reason that
// starts with late:.
func TestAggregateLateIsDeadLettered(t *testing.T) {
	r := newAggRun(t, "    window: {tumbling: 1m}\n    aggregates: {n: count()}\n")
	r.feed("a", 2*time.Minute, 1)
	rec := &record.Record{Key: []byte("a"), Topic: "in", Timestamp: base, Msg: map[string]any{"k": "a", "x": nil, "at": base}, Decoded: true}
	_, err := r.stage.Process(context.Background(), rec, nil)
	var late *stages.LateError
	if !errors.As(err, &late) {
		t.Fatalf("got %v, want a LateError", err)
	}
	j := failure.Judge(failure.Process, "stage agg", "", err)
	if j.Outcome != failure.DeadLetter || !strings.HasPrefix(j.Reason(), "late:") {
		t.Errorf("judged %v with reason %q", j.Outcome, j.Reason())
	}
}

// What an aggregate emits is typed for the stages after it: each function's result type.
func TestAggregateOutputSchema(t *testing.T) {
	p := build(t, `  - {name: d, type: decode, schema: {c: int, amount: float, qty: int, name: string, tag: 'string?', at: time}}
  - name: agg
    type: aggregate
    key: msg.c
    window: {tumbling: 1m}
    aggregates:
      n: count()
      revenue: sum(msg.amount)
      items: sum(msg.qty)
      mean: avg(msg.qty)
      low: min(msg.name)
      latest: max(msg.at)
      tag: first(msg.tag)
      names: count_distinct(msg.name)
`)
	want := "{items: int, key: int, latest: time, low: string, mean: float, n: int, names: int, revenue: float, tag: string?, window_end: time, window_start: time}"
	if got := p.StageByName("agg").Out.String(); got != want {
		t.Errorf("output schema\n got %s\nwant %s", got, want)
	}
}
