package stages

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/state"
)

const aggregateDoc = "Aggregates a key's records in time windows (tumbling, hopping or session) and emits a record per window: the key, `window_start` and `window_end` (timestamps, written as RFC 3339 text in UTC; a session ends at its last record's time plus `gap`) and the aggregates. Windows close as the partition's event time passes their end plus `grace`; records later than that go to the DLQ (reason `late: …`) or are dropped. Its windows are kept per input partition in a store that survives restarts (`state.dir`, backed by a changelog topic); a `key` other than the record's has the records repartitioned by it first. Under `delivery: exactly_once` each record counts once and each window is emitted once; under at-least-once a record read again after a crash may count twice, and a window closed just before it may be emitted again."

var aggregateFields = []spec.Field{
	spec.Expr("key", "any", "What the windows are per (a string, number, bool or time; not an object or list). Default: the record's key. Windows are kept per partition: a key computed here has the records go through `<group>-<stage>-repartition` first, so that one key's records meet in one partition."),
	spec.Object("window", "The windows a record falls in: exactly one of `tumbling`, `hopping` or `session`. Fixed windows are aligned on the Unix epoch in UTC (a 1m window starts at each whole minute).",
		spec.Duration("tumbling", "Windows of this size one after another: a record falls in one."),
		spec.Object("hopping", "Windows of `size`, one starting every `advance`: a record falls in each that holds it (size/advance of them, rounded up).",
			spec.Duration("size", "How long each window is.").Require(),
			spec.Duration("advance", "How far apart the windows start; at most `size`.").Require()),
		spec.Object("session", "A key's records less than `gap` apart make a session, from its first record's time to its last's plus `gap`; a record between two sessions merges them.",
			spec.Duration("gap", "The inactivity that ends a session.").Require()),
	).Require(),
	spec.Expr("time", "time or int", "The event time that places a record in its windows: a timestamp, or Unix milliseconds as an int. Default: the record's timestamp."),
	spec.Duration("grace", "How late a record may come: a window closes once the partition's stream time (the latest event time it has seen) reaches the window's end plus `grace`.").WithDefault("0s"),
	spec.Duration("idle_close", "When a partition brings no record for this long (wall clock), its stream time moves on by the time that passed, closing the windows it passes, as if time had gone on: the last windows close when traffic stops. 0: windows close only as records come."),
	spec.Enum("late", "What becomes of a record all of whose windows have closed: dlq, dead-lettered with a reason starting `late:`; drop, dropped and counted.", "dlq", "drop").WithDefault("dlq"),
	spec.Enum("emit", "final: a record per window when it closes, once; updates: a record per window a record changes, as it stands then (nothing at its close).", "final", "updates").WithDefault("final"),
	spec.Map("aggregates", "The output's fields besides `key`, `window_start` and `window_end`, each a call: `count()` and `count_distinct(x)`, ints; `sum(x)`, an int of ints, a float of floats; `avg(x)`, a float; `min(x)`, `max(x)` (of numbers, strings or times), `first(x)`, `last(x)` (by event time), of x's type. Nulls are skipped by all but count(); count_distinct is exact up to 512 values per window, then estimated (HyperLogLog, about 1.6% error).",
		spec.Expr("aggregate", "any", "An aggregation function's call, such as sum(msg.amount).")).NotEmpty().Require(),
}

// aggregateType is the aggregate stage type as the registry knows it.
func aggregateType() *Type {
	return &Type{Name: "aggregate", Doc: aggregateDoc, Fields: aggregateFields, Build: buildAggregate, Examples: aggregateExamples,
		Look: Look{DOTShape: "cylinder", MermaidOpen: "[(", MermaidClose: ")]", Detail: aggregateDetail},
		Counters: append([]spec.Counter{
			{Key: "windows_open", Metric: "stage_windows_open", Gauge: true, Help: "Windows open in the stage's open stores."},
			{Key: "windows_closed", Metric: "stage_windows_closed_total", Help: "Windows closed (and, with emit final, emitted)."},
			{Key: "late_dlq", Metric: "stage_late_dead_lettered_total", Help: "Records dead-lettered as late: their windows had closed."},
			{Key: "late_dropped", Metric: "stage_late_dropped_total", Help: "Records dropped as late (late: drop): their windows had closed."},
		}, storeCounters...),
	}
}

func aggregateDetail(f *spec.Value) (string, string) {
	w := f.Get("window")
	suffix := ""
	switch {
	case w.Has("tumbling"):
		suffix = " tumbling " + w.Get("tumbling").Written()
	case w.Has("hopping"):
		h := w.Get("hopping")
		suffix = " hopping " + h.Get("size").Written() + "/" + h.Get("advance").Written()
	case w.Has("session"):
		suffix = " session " + w.Get("session").Get("gap").Written()
	}
	key := "key"
	if v := f.Get("key"); v.Set {
		key = v.Written()
	}
	return suffix, "by " + key
}

type aggregate struct {
	key, time *expr.Program // nil: the record's key, its timestamp
	args      []*expr.Program
	specs     []aggSpec
	env       *expr.Binder
	win       windowing
	lateDrop  bool
	updates   bool
	idleClose time.Duration
	idle      idleClock // when each partition last brought a record

	stores atomic.Pointer[state.Stores] // set by OpenState as the run starts; read by Counters meanwhile
	mu     sync.Mutex
	parts  map[int32]*aggPart

	closedN, lateDLQ, lateDropped atomic.Int64
}

// outputFields are the fields every output has besides its aggregates.
var outputFields = []string{"key", "window_start", "window_end"}

func buildAggregate(c *Config) Built {
	f := c.Fields
	a := &aggregate{lateDrop: f.String("late") == "drop", updates: f.String("emit") == "updates", parts: map[int32]*aggPart{},
		idleClose: f.Duration("idle_close"), idle: idleClock{now: time.Now}}
	if v := f.Get("idle_close"); v.Set && a.idleClose < 0 {
		c.Diags().Add(v.Pos, v.Path, "idle_close cannot be below zero (0 turns it off)")
	}
	ok := a.buildWindow(c)
	out := &expr.Schema{Kind: expr.Object, Fields: map[string]*expr.Schema{
		"key": {Kind: expr.String}, "window_start": {Kind: expr.Time}, "window_end": {Kind: expr.Time}}}
	env := c.Env()
	if v := f.Get("key"); v.Set && strings.TrimSpace(v.Str) != "key" { // the record's key: no repartition
		a.key = expr.Compile(v, env, expr.WantAny, c.Diags())
		if a.key == nil {
			ok = false
		} else if k := a.key.Result.Kind; k == expr.List || k == expr.Object {
			c.Diags().Add(v.ExprPos(1, 0), v.Path, "key computes %s, which cannot be a key (a string, number, bool or time can)", kindArticle(a.key.Result))
			ok = false
		} else {
			res := *a.key.Result
			res.Optional = false // a record whose key computes null fails
			out.Fields["key"] = &res
		}
	}
	if v := f.Get("time"); v.Set {
		a.time = expr.Compile(v, env, expr.WantAny, c.Diags())
		switch {
		case a.time == nil:
			ok = false
		case a.time.Result.Kind != expr.Time && a.time.Result.Kind != expr.Int && a.time.Result.Kind != expr.Any:
			c.Diags().Add(v.ExprPos(1, 0), v.Path, "time must compute a timestamp or Unix milliseconds (an int), but it computes %s", a.time.Result)
			ok = false
		}
	}
	for _, e := range f.Get("aggregates").Entries {
		sp, arg, res, good := compileAggregate(c, e, env)
		if slicesContains(outputFields, e.Key) {
			c.Diags().Add(e.KeyPos, e.Value.Path, "%s is a field of every output already (key, window_start, window_end): name the aggregate otherwise", e.Key)
			good = false
		}
		ok = ok && good
		a.specs, a.args = append(a.specs, sp), append(a.args, arg)
		out.Fields[e.Key] = res
	}
	if !ok {
		return Built{Out: out}
	}
	a.env = expr.NewBinder(append([]*expr.Program{a.key, a.time}, a.args...)...)
	return Built{Stage: a, Out: out}
}

func slicesContains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// buildWindow reads the window block; false when it is wrong.
func (a *aggregate) buildWindow(c *Config) bool {
	w := c.Fields.Get("window")
	a.win.grace = c.Fields.Duration("grace").Milliseconds()
	var kinds []string
	for _, k := range []string{"tumbling", "hopping", "session"} {
		if v := w.Get(k); v.Set {
			if len(kinds) > 0 {
				c.Diags().Add(v.Pos, v.Path, "a window is one of tumbling, hopping or session, not both %s and %s", kinds[0], k)
				return false
			}
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		if w.Set {
			c.Diags().Add(w.Pos, w.Path, "a window needs its size: one of tumbling: DURATION, hopping: {size: D, advance: D} or session: {gap: D}")
		}
		return false
	}
	positive := func(v *spec.Value) (int64, bool) {
		if v.Set && v.Dur < time.Millisecond {
			c.Diags().Add(v.Pos, v.Path, "%s must be at least 1ms", v.Field.Name)
			return 0, false
		}
		return v.Dur.Milliseconds(), v.Set
	}
	var good bool
	switch kinds[0] {
	case "tumbling":
		a.win.kind = tumbling
		a.win.size, good = positive(w.Get("tumbling"))
		a.win.advance = a.win.size
	case "hopping":
		a.win.kind = hopping
		h := w.Get("hopping")
		size, ok1 := positive(h.Get("size"))
		adv, ok2 := positive(h.Get("advance"))
		a.win.size, a.win.advance, good = size, adv, ok1 && ok2
		if good && adv > size {
			v := h.Get("advance")
			c.Diags().Add(v.Pos, v.Path, "advance (%s) must be at most size (%s): records between two windows would fall in none", v.Written(), h.Get("size").Written())
			good = false
		}
	case "session":
		a.win.kind = session
		a.win.gap, good = positive(w.Get("session").Get("gap"))
	}
	return good
}

// callPattern is an aggregate as written: a function name and its argument.
var callPattern = regexp.MustCompile(`(?s)^(\s*)([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$`)

// compileAggregate reads one aggregate: its function, its argument compiled where it is
// written (so that errors inside it point into the call), and its output's type.
func compileAggregate(c *Config, e spec.Entry, env expr.Env) (aggSpec, *expr.Program, *expr.Schema, bool) {
	v := e.Value
	sp := aggSpec{name: e.Key, label: strings.TrimSpace(v.Written())}
	anyOut := &expr.Schema{Kind: expr.Any}
	m := callPattern.FindStringSubmatchIndex(v.Str)
	if m == nil {
		c.Diags().Add(v.ExprPos(1, 0), v.Path, "an aggregate is a call of one of %s, such as sum(msg.amount)", strings.Join(aggFuncNames, ", "))
		return sp, nil, anyOut, false
	}
	name := v.Str[m[4]:m[5]]
	fn := -1
	for i, n := range aggFuncNames {
		if n == name {
			fn = i
		}
	}
	if fn < 0 {
		c.Diags().Add(exprPosAt(v, m[4]), v.Path, "unknown aggregation function %s%s (they are %s)", name, diag.DidYouMean(name, aggFuncNames), strings.Join(aggFuncNames, ", "))
		return sp, nil, anyOut, false
	}
	sp.fn = aggFunc(fn)
	argSrc := strings.TrimSpace(v.Str[m[6]:m[7]])
	switch {
	case sp.fn == fnCount && argSrc != "":
		c.Diags().Add(exprPosAt(v, m[6]), v.Path, "count() takes no argument: it counts the window's records (count_distinct(x) counts distinct values)")
		return sp, nil, &expr.Schema{Kind: expr.Int}, false
	case sp.fn == fnCount:
		return sp, nil, &expr.Schema{Kind: expr.Int}, true
	case argSrc == "":
		c.Diags().Add(exprPosAt(v, m[6]), v.Path, "%s needs an argument, what it aggregates: %s(msg.amount)", name, name)
		return sp, nil, anyOut, false
	}
	// The argument is compiled in place: the rest of the call blanked out, so that its
	// lines and columns, and those of its errors, are the file's.
	arg := *v
	arg.Str = blankOutside(v.Str, m[6], m[7])
	prog := expr.Compile(&arg, env, expr.WantAny, c.Diags())
	if prog == nil {
		return sp, nil, anyOut, false
	}
	res := prog.Result
	at := exprPosAt(v, m[6]+(len(v.Str[m[6]:m[7]])-len(strings.TrimLeft(v.Str[m[6]:m[7]], " \t\n"))))
	kind := res.Kind
	switch sp.fn {
	case fnCountDistinct:
		return sp, prog, &expr.Schema{Kind: expr.Int}, true
	case fnSum, fnAvg:
		if kind != expr.Int && kind != expr.Float && kind != expr.Any {
			verb := map[aggFunc]string{fnSum: "summed", fnAvg: "averaged"}[sp.fn]
			c.Diags().Add(at, v.Path, "%s of %s: %s cannot be %s", name, argSrc, kindArticle(res), verb)
			return sp, prog, anyOut, false
		}
		if sp.fn == fnAvg {
			return sp, prog, &expr.Schema{Kind: expr.Float, Optional: res.Optional || optionalPath(c.In, argSrc)}, true
		}
		return sp, prog, &expr.Schema{Kind: kind}, true
	case fnMin, fnMax:
		if kind != expr.Int && kind != expr.Float && kind != expr.String && kind != expr.Time && kind != expr.Any {
			c.Diags().Add(at, v.Path, "%s of %s: %s has no order (numbers, strings and times do)", name, argSrc, kindArticle(res))
			return sp, prog, anyOut, false
		}
	}
	out := *res
	// null when the window had no value: the field's own optionality, which expr-lang's
	// inferred type does not carry
	out.Optional = out.Optional || optionalPath(c.In, argSrc)
	return sp, prog, &out, true
}

// fieldPath is an expression that only reads a field: msg.a.b.
var fieldPath = regexp.MustCompile(`^msg(\.[A-Za-z_][A-Za-z0-9_]*)+$`)

// optionalPath reports an expression that reads an optional field of in (or one inside an
// optional object).
func optionalPath(in *expr.Schema, src string) bool {
	if !fieldPath.MatchString(src) {
		return false
	}
	s := in
	for _, name := range strings.Split(src, ".")[1:] {
		f, ok := s.Field(name)
		if !ok {
			return false
		}
		if f.Optional {
			return true
		}
		s = f
	}
	return false
}

// kindArticle names a schema's kind with its article: "a string", "an object".
func kindArticle(s *expr.Schema) string {
	switch s.Kind {
	case expr.Object:
		return "an object"
	case expr.List:
		return "a list"
	case expr.Bytes:
		return "bytes"
	}
	return "a " + s.Kind.String()
}

// blankOutside is s with every character outside [from, to) a space, lines kept.
func blankOutside(s string, from, to int) string {
	b := []byte(s)
	for i := range b {
		if (i < from || i >= to) && b[i] != '\n' {
			b[i] = ' '
		}
	}
	// Bytes blanked inside a multi-byte rune would shift columns: blank whole runes.
	return strings.ToValidUTF8(string(b), " ")
}

// exprPosAt is the file position of byte offset off of an expression.
func exprPosAt(v *spec.Value, off int) diag.Pos {
	line, col := 1, 0
	for _, r := range v.Str[:off] {
		if r == '\n' {
			line, col = line+1, 0
		} else {
			col++
		}
	}
	return v.ExprPos(line, col)
}

// OpenState implements Stateful.
func (a *aggregate) OpenState(stores *state.Stores) { a.stores.Store(stores) }

// LateError is a record that came after every window it falls in had closed: its own fault,
// dead-lettered (late: dlq) rather than folded into a window already emitted.
type LateError struct {
	EventTime, WindowEnd, StreamTime time.Time
	Grace                            time.Duration
}

func (e *LateError) Error() string {
	const f = "2006-01-02T15:04:05.000Z07:00"
	return fmt.Sprintf("late: event time %s falls in windows closed by stream time %s (the latest ended at %s; grace %s)",
		e.EventTime.UTC().Format(f), e.StreamTime.UTC().Format(f), e.WindowEnd.UTC().Format(f), e.Grace)
}

// RecordFault marks the error as its record's fault (see failure.RecordFault).
func (*LateError) RecordFault() {}

// ErrNoAggregateKey is a record with no key to aggregate by.
var ErrNoAggregateKey = errors.New("aggregate: the record has no key (an aggregate goes by the record's key unless `key` computes one)")

// aggInput is what a record brings: its key, event time and its own state, computed before
// the store is touched, so that a record that fails changes nothing.
type aggInput struct {
	key  []byte
	t    int64
	self *winState // start and end unset
}

func (a *aggregate) input(rec *record.Record) (*aggInput, error) {
	vars := a.env.Bind(rec)
	defer a.env.Release(vars)
	in := &aggInput{key: rec.Key}
	var keyVal any = string(rec.Key)
	if a.key != nil {
		v, err := a.key.Run(vars)
		if err != nil {
			return nil, &FieldError{Field: "key", Err: err}
		}
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("aggregate: key computed %s, which cannot be a key", describe(v))
		}
		keyVal, in.key = v, record.ToBytes(v)
	}
	if in.key == nil {
		return nil, ErrNoAggregateKey
	}
	if a.time == nil {
		if rec.Timestamp.IsZero() {
			return nil, errors.New("aggregate: the record has no timestamp (give its event time with `time`)")
		}
		in.t = rec.Timestamp.UnixMilli()
	} else {
		v, err := a.time.Run(vars)
		if err != nil {
			return nil, &FieldError{Field: "time", Err: err}
		}
		switch x := v.(type) {
		case time.Time:
			in.t = x.UnixMilli()
		case int:
			in.t = int64(x)
		case int64:
			in.t = x
		default:
			return nil, fmt.Errorf("aggregate: time computed %s, not a timestamp or Unix milliseconds", describe(v))
		}
	}
	vals := make([]any, len(a.args))
	for i, p := range a.args {
		if p == nil {
			continue
		}
		v, err := p.Run(vars)
		if err != nil {
			var re *expr.RuntimeError
			if errors.As(err, &re) {
				re.Expr = a.specs[i].label // the call as written, not its argument blanked around
			}
			return nil, &FieldError{Field: "aggregates " + a.specs[i].name, Err: err}
		}
		vals[i] = v
	}
	self, err := fold(a.specs, 0, 0, in.t, keyVal, vals)
	if err != nil {
		return nil, err
	}
	in.self = self
	return in, nil
}

func (a *aggregate) Process(ctx context.Context, rec *record.Record, out []Output) ([]Output, error) {
	var in *aggInput
	if !rec.Tick {
		a.idle.seen(rec.Partition)
		var err error
		if in, err = a.input(rec); err != nil {
			return out, err
		}
	}
	base := len(out)
	for {
		st, err := a.stores.Load().Get(ctx, rec.Partition)
		if err != nil {
			return out, err
		}
		var res []Output
		if rec.Tick {
			res, err = a.tick(st, rec, out)
		} else {
			res, err = a.apply(st, rec, in, out)
		}
		if !errors.Is(err, state.ErrReleased) {
			return res, err
		}
		out = out[:base] // released meanwhile (its partition moved): ask for it again
	}
}
