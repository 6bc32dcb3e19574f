package stages

import (
	"fmt"
	"math"
	"testing"
	"time"
)

const (
	sec    = int64(1000)
	minute = 60 * sec
)

func TestWindowStarts(t *testing.T) {
	cases := []struct {
		name string
		w    windowing
		t    int64
		want []int64
	}{
		{"tumbling: its minute", windowing{kind: tumbling, size: minute, advance: minute}, 90 * sec, []int64{minute}},
		{"tumbling: a window's start is in it", windowing{kind: tumbling, size: minute, advance: minute}, minute, []int64{minute}},
		{"tumbling: its end is not", windowing{kind: tumbling, size: minute, advance: minute}, minute - 1, []int64{0}},
		{"tumbling: before 1970", windowing{kind: tumbling, size: minute, advance: minute}, -1, []int64{-minute}},
		{"hopping: size/advance windows, latest first", windowing{kind: hopping, size: 5 * minute, advance: minute}, 3*minute + 30*sec,
			[]int64{3 * minute, 2 * minute, minute, 0, -minute}},
		{"hopping: on a boundary", windowing{kind: hopping, size: 5 * minute, advance: minute}, 5 * minute,
			[]int64{5 * minute, 4 * minute, 3 * minute, 2 * minute, minute}},
		{"hopping: size not a multiple of advance, two windows", windowing{kind: hopping, size: 90 * sec, advance: minute}, 70 * sec,
			[]int64{minute, 0}},
		{"hopping: size not a multiple of advance, one window", windowing{kind: hopping, size: 90 * sec, advance: minute}, 100 * sec,
			[]int64{minute}},
		{"hopping: advance = size is tumbling", windowing{kind: hopping, size: minute, advance: minute}, 30 * sec, []int64{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.w.starts(c.t); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("starts(%d) = %v, want %v", c.t, got, c.want)
			}
		})
	}
}

func TestWindowClosedAndSessions(t *testing.T) {
	w := windowing{kind: session, gap: 30 * sec, grace: 10 * sec}
	closed := []struct {
		end, stream int64
		want        bool
	}{
		{minute, noTime, false},              // no stream time yet: nothing closed
		{minute, minute, false},              // the end reached, not the grace
		{minute, minute + 10*sec - 1, false}, // a millisecond before end + grace
		{minute, minute + 10*sec, true},      // end + grace reached
	}
	for _, c := range closed {
		if got := w.closed(c.end, c.stream); got != c.want {
			t.Errorf("closed(end %d, stream %d) = %v, want %v", c.end, c.stream, got, c.want)
		}
	}
	// A session [start, end) where end = its last record's time + gap takes a record at t
	// whose own session [t, t+gap) overlaps it.
	overlaps := []struct {
		start, end, t int64
		want          bool
	}{
		{0, 30 * sec, 29 * sec, true},              // less than gap after its last record
		{0, 30 * sec, 30 * sec, false},             // exactly gap after: a new session
		{minute, minute + 30*sec, 31 * sec, true},  // less than gap before its first record
		{minute, minute + 30*sec, 30 * sec, false}, // exactly gap before
	}
	for _, c := range overlaps {
		if got := w.overlaps(c.start, c.end, c.t); got != c.want {
			t.Errorf("overlaps([%d, %d), %d) = %v, want %v", c.start, c.end, c.t, got, c.want)
		}
	}
}

func TestStoreKeysSort(t *testing.T) {
	times := []int64{math.MinInt64 + 1, -minute, -1, 0, 1, minute, math.MaxInt64}
	for i := 1; i < len(times); i++ {
		a, b := string(endKey(times[i-1], 0, []byte("k"))), string(endKey(times[i], 0, []byte("k")))
		if a >= b {
			t.Errorf("end %d does not sort before %d", times[i-1], times[i])
		}
	}
	k := windowKey([]byte("cust-1"), -minute)
	key, start, ok := parseWindowKey(k)
	if !ok || string(key) != "cust-1" || start != -minute {
		t.Errorf("parseWindowKey = %q %d %v", key, start, ok)
	}
	end, start, key, ok := parseEndKey(endKey(minute, 0, []byte("cust-1")))
	if !ok || end != minute || start != 0 || string(key) != "cust-1" {
		t.Errorf("parseEndKey = %d %d %q %v", end, start, key, ok)
	}
}

var allSpecs = []aggSpec{
	{name: "n", fn: fnCount, label: "count()"},
	{name: "total", fn: fnSum, label: "sum(msg.x)"},
	{name: "low", fn: fnMin, label: "min(msg.x)"},
	{name: "high", fn: fnMax, label: "max(msg.x)"},
	{name: "mean", fn: fnAvg, label: "avg(msg.x)"},
	{name: "one", fn: fnFirst, label: "first(msg.x)"},
	{name: "last", fn: fnLast, label: "last(msg.x)"},
	{name: "kinds", fn: fnCountDistinct, label: "count_distinct(msg.x)"},
}

func results(t *testing.T, specs []aggSpec, ws *winState) string {
	t.Helper()
	out := ""
	for i, sp := range specs {
		out += fmt.Sprintf("%s=%#v ", sp.name, ws.aggs[i].result(sp, ws.count))
	}
	return out
}

// Folding records one by one, merging windows and a store's round trip give the same
// aggregates, of the same Go types.
func TestAggregateFunctions(t *testing.T) {
	feed := []struct {
		t int64
		x any
	}{{5, 3}, {2, 1.5}, {9, nil}, {7, 2}, {2, 4}}
	ws := &winState{maxTime: noTime, aggs: make([]aggState, len(allSpecs))}
	for _, r := range feed {
		vals := make([]any, len(allSpecs))
		for i := range vals {
			vals[i] = r.x
		}
		self, err := fold(allSpecs, 0, minute, r.t, "k", vals)
		if err != nil {
			t.Fatal(err)
		}
		if err := merge(allSpecs, ws, self); err != nil {
			t.Fatal(err)
		}
	}
	// first: the earliest event time (2), the earlier record on a tie; last: the latest
	// with a value (7: the one at 9 is null); nulls are no value to count_distinct either.
	want := `n=5 total=10.5 low=1.5 high=4 mean=2.625 one=1.5 last=2 kinds=4 `
	if got := results(t, allSpecs, ws); got != want {
		t.Errorf("folded:\n got %s\nwant %s", got, want)
	}
	b, err := ws.encode(allSpecs)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeState(allSpecs, 0, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := results(t, allSpecs, back); got != want {
		t.Errorf("read back:\n got %s\nwant %s", got, want)
	}
	if back.maxTime != 9 || back.count != 5 || back.key != "k" {
		t.Errorf("read back maxTime %d count %d key %v", back.maxTime, back.count, back.key)
	}
	// A store's state for other aggregates: each found by its name and function.
	other := []aggSpec{allSpecs[2], {name: "new", fn: fnSum, label: "sum(msg.y)"}, {name: "n", fn: fnMax, label: "max(msg.n)"}}
	back, err = decodeState(other, 0, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := results(t, other, back); got != `low=1.5 new=0 n=<nil> ` {
		t.Errorf("read back for other aggregates: %s", got)
	}
}

func TestAggregateValuesKeepTheirType(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 5, time.UTC)
	for _, v := range []any{3.0, 3, "3", true, at, []byte{1, 2}, map[string]any{"a": "b"}, []any{"x"}} {
		b, err := appendValue(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		r := &reader{b: b}
		got := r.value()
		if r.err != nil || fmt.Sprintf("%T %v", got, got) != fmt.Sprintf("%T %v", v, v) {
			t.Errorf("%T %v read back as %T %v (%v)", v, v, got, got, r.err)
		}
	}
}

func TestAggregateFunctionErrors(t *testing.T) {
	sum := []aggSpec{{name: "total", fn: fnSum, label: "sum(msg.x)"}}
	if _, err := fold(sum, 0, 0, 0, "k", []any{"12"}); err == nil || err.Error() != "aggregates total: sum of msg.x: a string cannot be summed" {
		t.Errorf("sum of a string: %v", err)
	}
	a, _ := fold(sum, 0, 0, 0, "k", []any{math.MaxInt64 - 1})
	b, _ := fold(sum, 0, 0, 0, "k", []any{2})
	if err := merge(sum, a, b); err == nil {
		t.Errorf("an int sum past MaxInt64 passed: %v", a.aggs[0].i)
	}
	mm := []aggSpec{{name: "low", fn: fnMin, label: "min(msg.x)"}}
	a, _ = fold(mm, 0, 0, 0, "k", []any{"a"})
	b, _ = fold(mm, 0, 0, 0, "k", []any{1})
	if err := merge(mm, a, b); err == nil {
		t.Errorf("minute of a string and a number passed")
	}
	if _, err := fold(mm, 0, 0, 0, "k", []any{true}); err == nil {
		t.Errorf("minute of a bool passed")
	}
}

// count_distinct is exact up to distinctExact values, then a sketch within a few percent,
// and merges (two sessions joined) count a value seen in both once.
func TestCountDistinct(t *testing.T) {
	specs := []aggSpec{{name: "d", fn: fnCountDistinct, label: "count_distinct(msg.x)"}}
	add := func(ws *winState, from, to int) {
		for i := from; i < to; i++ {
			self, _ := fold(specs, 0, 0, 0, "k", []any{fmt.Sprint("v", i)})
			if err := merge(specs, ws, self); err != nil {
				t.Fatal(err)
			}
		}
	}
	fresh := func() *winState { return &winState{maxTime: noTime, aggs: make([]aggState, 1)} }
	ws := fresh()
	add(ws, 0, distinctExact)
	add(ws, 0, 10) // seen already
	if n := ws.aggs[0].result(specs[0], 0); n != distinctExact || ws.aggs[0].hll != nil {
		t.Errorf("%d distinct values counted %v (sketch: %v)", distinctExact, n, ws.aggs[0].hll != nil)
	}
	for _, n := range []int{distinctExact + 1, 5000, 100000} {
		ws := fresh()
		add(ws, 0, n)
		got := ws.aggs[0].result(specs[0], 0).(int)
		if e := math.Abs(float64(got-n)) / float64(n); e > 0.05 {
			t.Errorf("%d distinct values estimated %d (%.1f%% off)", n, got, e*100)
		}
		b, err := ws.encode(specs)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 5000 {
			t.Errorf("%d distinct values kept in %d bytes", n, len(b))
		}
	}
	x, y := fresh(), fresh()
	add(x, 0, 3000)
	add(y, 2000, 4000)
	if err := merge(specs, x, y); err != nil {
		t.Fatal(err)
	}
	if got := x.aggs[0].result(specs[0], 0).(int); math.Abs(float64(got-4000)) > 200 {
		t.Errorf("two sketches merged count %d, want about 4000", got)
	}
}
