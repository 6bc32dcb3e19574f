package stages

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// tableField is enrich's `table`: a lookup of a compacted topic's latest values.
var tableField = spec.Object("table", "Look up the latest value of each key of a compacted topic: a global table of all its partitions, kept in a local store (`state.dir`/<pipeline>/<stage>-table, its cache `state.cache`), read to the topic's end (read_committed) before records flow, then followed as the topic changes; a tombstone deletes its key. A clean stop keeps the store, read on from where it was; after a crash it is read again from the topic's start. A key is expected in one partition of the topic (as a producer's partitioner puts it): across partitions the table's order is not the topic's. While Kafka cannot be read the table stays as it was. Lookups are not replayed: a record read again finds the table as it is then. Under `pythia-pipe test` the table is empty (and a wait does not wait).",
	spec.String("topic", "The table's topic (compacted, as a rule); its records' keys are what `key` is matched against.").Require(),
	spec.Expr("key", "any", "The key looked up, computed on the record: a string as its UTF-8 bytes, a number as its decimal text, matched against the table records' keys. A null key finds nothing.").Require(),
	spec.Raw("schema", "The type of the table's values (JSON), as decode's `schema`: the stages after this one see the enrichment typed by it. A value that does not match is left out of the table (counted as `table_invalid`: its key is missing). Default: any JSON value."),
	spec.Duration("max_wait", "With `on_missing: wait`, how long a record waits for its key to appear in the table; then it goes to the DLQ, its reason naming the key.").WithDefault("30s"),
)

// tableCounters describe a table lookup's numbers. The restore's are those of the stateful
// stages' stores, for /readyz and the progress line read them alike.
var tableCounters = []spec.Counter{
	{Key: "table_keys", Metric: "enrich_table_keys", Gauge: true, Help: "Keys in an enrich stage's table."},
	{Key: "table_bytes", Metric: "enrich_table_bytes", Gauge: true, Help: "An enrich stage's table's size on disk and in memory tables."},
	{Key: "table_invalid", Metric: "enrich_table_invalid_total", Help: "Table records whose value is not JSON of the table's schema: their keys are left out."},
	{Key: "table_waiting", Metric: "enrich_table_waiting", Gauge: true, Help: "Records waiting for their key to appear in the table (on_missing: wait)."},
	{Key: "lookups", Metric: "enrich_table_lookups_total", Help: "Table lookups."},
	{Key: "misses", Metric: "enrich_table_misses_total", Help: "Table lookups that found nothing (after waiting, with on_missing: wait)."},
	restoringCounters[0], restoringCounters[1], restoringCounters[2],
}

// TableUser is a Stage looking up a table topic (enrich's table). The engine opens its table
// before the source starts (OpenTable returns once the table is restored) and closes the
// stage (Closer) after its last record, which stops following the topic.
type TableUser interface {
	Stage
	Closer
	// TableTopic is the table's topic; "" when the stage has no table.
	TableTopic() string
	// OpenTable opens the table's store and reads the topic into it up to its end, then goes
	// on following it. It returns early with ctx's error.
	OpenTable(ctx context.Context, env TableEnv) error
}

// TableEnv is where a table lookup keeps its store and reads its topic from.
type TableEnv struct {
	Dir string // the store's folder; "" keeps it in memory
	// Memory is the run's stores' memory; nil: the table's own, of CacheBytes.
	Memory     *state.Memory
	CacheBytes int64
	// Topic reads the table's topic; nil (a run in memory) leaves the table empty and
	// unchanging.
	Topic state.TableTopic
	Log   *slog.Logger
}

// tableLookup is an enrich's table: its store, restored and then followed by a goroutine.
type tableLookup struct {
	topic   string
	schema  *expr.Schema // nil: any JSON
	maxWait time.Duration

	tbl    *state.Table
	pub    atomic.Pointer[state.Table] // tbl, for the metrics, which read while it is opened
	static bool                        // nothing follows the topic: the table never changes, so nothing is waited for
	log    *slog.Logger
	stop   context.CancelFunc
	done   chan struct{} // closed when the follower ends
	failed atomic.Pointer[error]

	lookups, misses, invalid, waiting atomic.Int64
	restoring, restored, restoreNs    atomic.Int64
}

// newTableLookup reads the table block.
func newTableLookup(c *Config, f *spec.Value) *tableLookup {
	l := &tableLookup{topic: f.String("topic"), maxWait: f.Duration("max_wait")}
	if sv := f.Get("schema"); sv.Set {
		l.schema = parseSchema(c.Parser, sv.Node, sv.Path)
	}
	if v := f.Get("max_wait"); v.Set && l.maxWait <= 0 {
		c.Parser.Errorf(v.Pos, v.Path, "max_wait must be above 0: how long a record waits for its key")
	}
	return l
}

// found is the schema of a table's value.
func (l *tableLookup) found() *expr.Schema {
	if l.schema == nil {
		return &expr.Schema{Kind: expr.Any}
	}
	return l.schema
}

// TableTopic implements TableUser.
func (e *enrich) TableTopic() string {
	if e.tbl == nil {
		return ""
	}
	return e.tbl.topic
}

// OpenTable implements TableUser.
func (e *enrich) OpenTable(ctx context.Context, env TableEnv) error {
	if e.tbl == nil {
		return nil
	}
	return e.tbl.open(ctx, env)
}

func (l *tableLookup) open(ctx context.Context, env TableEnv) error {
	l.tbl, l.log = nil, env.Log
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	open := func() (*state.Table, error) { return state.OpenTable(env.Dir, env.CacheBytes) }
	if env.Memory != nil {
		open = func() (*state.Table, error) { return state.OpenTableIn(env.Dir, env.Memory) }
	}
	tbl, err := open()
	if err != nil {
		return err
	}
	l.tbl = tbl
	l.pub.Store(tbl)
	l.done = make(chan struct{})
	if env.Topic == nil {
		l.static = true
		close(l.done)
		return nil
	}
	began := time.Now()
	ends, err := l.ends(ctx, env.Topic)
	if err != nil {
		close(l.done)
		return err
	}
	from := tbl.Offsets()
	for p, o := range from {
		if end, ok := ends[p]; !ok || o > end {
			l.log.Warn("the table's store is ahead of its topic (was the topic made again?); reading it from its start", "topic", l.topic, "partition", p, "store_at", o, "end", end)
			if err := tbl.Forget(); err != nil {
				close(l.done)
				return err
			}
			from = map[int32]int64{}
			break
		}
	}
	pending := map[int32]int64{}
	for p, end := range ends {
		if from[p] < end {
			pending[p] = end
		}
	}
	l.restoring.Store(int64(len(pending)))
	if len(pending) > 0 {
		l.log.Info("restoring a table from its topic", "topic", l.topic, "partitions", len(ends), "behind", len(pending), "clean", len(from) > 0)
	}
	followCtx, stop := context.WithCancel(context.Background())
	l.stop = stop
	if u, ok := env.Topic.(interface{ Unchanging() bool }); ok && u.Unchanging() {
		l.static = true // nothing is worth waiting for
	}
	restored := make(chan struct{})
	go l.follow(followCtx, env.Topic, pending, restored, began)
	select {
	case <-restored:
		return nil
	case <-l.done:
		return l.failure()
	case <-ctx.Done():
		stop()
		<-l.done
		return ctx.Err()
	}
}

// ends asks for the topic's ends until it answers: Kafka away is waited out.
func (l *tableLookup) ends(ctx context.Context, topic state.TableTopic) (map[int32]int64, error) {
	for failures := 1; ; failures++ {
		ends, err := topic.Ends(ctx)
		if err == nil {
			return ends, nil
		}
		if failures == 1 || failures%10 == 0 {
			l.log.Warn("cannot read the table's topic; records wait", "topic", l.topic, "failures", failures, "err", err)
		}
		select {
		case <-time.After(min(time.Duration(failures)*200*time.Millisecond, 5*time.Second)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// restoreBatch is how many changes a restore writes at once.
const restoreBatch = 1024

// follow reads the topic into the table until ctx ends: up to the ends of pending (closing
// restored then), a batch at a time, then each change as it comes. A failed read is read
// again from the table's offsets; a store that fails ends it (failed).
func (l *tableLookup) follow(ctx context.Context, topic state.TableTopic, pending map[int32]int64, restored chan struct{}, began time.Time) {
	defer close(l.done)
	restoring := len(pending) > 0
	var batch []state.TableChange
	finish := func() {
		restoring = false
		l.restoreNs.Add(int64(time.Since(began)))
		l.restoring.Store(0)
		l.log.Info("table restored", "topic", l.topic, "records", l.restored.Load(), "keys", l.tbl.Keys(), "took", time.Since(began).Round(time.Millisecond))
		close(restored)
	}
	if !restoring {
		close(restored)
	}
	flush := func() error {
		err := l.tbl.Apply(batch)
		batch = batch[:0]
		return err
	}
	for failures := 0; ctx.Err() == nil; {
		err := topic.Follow(ctx, l.tbl.Offsets(), func(p int32, offset int64, key, value []byte, control bool) error {
			c := state.TableChange{Partition: p, Offset: offset, Key: key, Value: value, Control: control}
			if !control && value != nil && !l.valid(p, offset, key, value) {
				c.Value = nil // not a value of the table's schema: its key is missing
			}
			if !restoring {
				batch = append(batch[:0], c)
				return flush()
			}
			l.restored.Add(1)
			batch = append(batch, c)
			if end, ok := pending[p]; ok && offset+1 >= end {
				delete(pending, p)
				l.restoring.Store(int64(len(pending)))
			}
			if len(batch) >= restoreBatch || len(pending) == 0 {
				if err := flush(); err != nil {
					return err
				}
			}
			if len(pending) == 0 {
				finish()
			}
			return nil
		})
		var te *state.TableError
		if errors.As(err, &te) {
			l.failed.Store(&err)
			l.log.Error("the table's store failed: lookups fail, and the pipeline stops", "topic", l.topic, "err", err)
			return
		}
		if len(batch) > 0 { // what was read before the failure is kept, and read on from
			if err := flush(); err != nil {
				l.failed.Store(&err)
				return
			}
		}
		if err == nil || ctx.Err() != nil {
			continue
		}
		failures++
		if failures == 1 || failures%10 == 0 {
			l.log.Warn("reading the table's topic failed; the table stays as it is until it can be read again", "topic", l.topic, "failures", failures, "err", err)
		}
		select {
		case <-time.After(min(time.Duration(failures)*200*time.Millisecond, 5*time.Second)):
		case <-ctx.Done():
		}
	}
}

// valid reports whether value is JSON of the table's schema; a value that is not is counted
// and said (the first and every 100th).
func (l *tableLookup) valid(p int32, offset int64, key, value []byte) bool {
	_, err := l.decode(value)
	if err == nil {
		return true
	}
	if n := l.invalid.Add(1); n == 1 || n%100 == 0 {
		l.log.Warn("a table record is not of the table's schema; its key is left out", "topic", l.topic, "partition", p, "offset", offset, "key", string(key), "invalid", n, "err", err)
	}
	return false
}

// decode reads a table value: JSON, of the schema when there is one.
func (l *tableLookup) decode(raw []byte) (any, error) {
	v, err := record.DecodeJSON(raw)
	if err != nil {
		return nil, err
	}
	if l.schema != nil {
		return l.schema.Coerce(v, "")
	}
	return v, nil
}

func (l *tableLookup) failure() error {
	if err := l.failed.Load(); err != nil {
		return *err
	}
	return nil
}

// lookup finds key's value; with wait, a key not there is waited for, up to max_wait, as the
// topic changes. ok false: nothing found.
func (l *tableLookup) lookup(ctx context.Context, key []byte, wait bool) (_ any, ok bool, _ error) {
	l.lookups.Add(1)
	var deadline <-chan time.Time
	for {
		if err := l.failure(); err != nil {
			return nil, false, err
		}
		changed := l.tbl.Changed()
		raw, ok, err := l.tbl.Get(key)
		if err != nil {
			return nil, false, err
		}
		if ok {
			v, err := l.decode(raw)
			return v, err == nil, err
		}
		if !wait || l.static || key == nil {
			l.misses.Add(1)
			return nil, false, nil
		}
		if deadline == nil {
			timer := time.NewTimer(l.maxWait)
			defer timer.Stop()
			deadline = timer.C
			l.waiting.Add(1)
			defer l.waiting.Add(-1)
		}
		select {
		case <-changed:
		case <-deadline:
			l.misses.Add(1)
			return nil, false, nil
		case <-l.done: // the follower stopped: nothing changes any more
			if err := l.failure(); err != nil {
				return nil, false, err
			}
			l.misses.Add(1)
			return nil, false, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// counters are the table's numbers.
func (l *tableLookup) counters() map[string]int64 {
	c := map[string]int64{"lookups": l.lookups.Load(), "misses": l.misses.Load(), "table_invalid": l.invalid.Load(),
		"table_waiting": l.waiting.Load(), "restoring": l.restoring.Load(), "restored": l.restored.Load(),
		"restore_ms": time.Duration(l.restoreNs.Load()).Milliseconds()}
	if t := l.pub.Load(); t != nil {
		c["table_keys"], c["table_bytes"] = t.Keys(), t.Bytes()
	}
	return c
}

// close stops following the topic and closes the store, marked clean unless it failed.
func (l *tableLookup) close() {
	if l.tbl == nil {
		return
	}
	if l.stop != nil {
		l.stop()
	}
	<-l.done
	if err := l.tbl.Close(l.failure() == nil); err != nil {
		l.log.Warn("closing the table's store", "topic", l.topic, "err", err)
	}
}

// missing is the error of a record whose key the table lacks.
func (l *tableLookup) missing(key []byte, waited bool) error {
	e := &MissingError{Key: string(key), Table: l.topic, NullKey: key == nil}
	switch {
	case waited && l.static:
		e.Static = true
	case waited && key != nil:
		e.Waited = l.maxWait
	}
	return e
}

// TableUserOf is the TableUser s is, or wraps (a retry around a table lookup); ok false when
// it looks up no table.
func TableUserOf(s Stage) (TableUser, bool) {
	if r, ok := s.(*retry); ok {
		s = r.inner
	}
	u, ok := s.(TableUser)
	if !ok || u.TableTopic() == "" {
		return nil, false
	}
	return u, true
}
