package stages

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/state"
)

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
	framed  *framed      // avro, protobuf
	schema  *expr.Schema // json: the values' schema; nil: any JSON
	typed   *expr.Schema // what the stages after see of a value; nil: anything
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
	open := func() (*state.Table, error) { return state.OpenTable(env.Dir, env.CacheBytes, l.readBy()) }
	if env.Memory != nil {
		open = func() (*state.Table, error) { return state.OpenTableIn(env.Dir, env.Memory, l.readBy()) }
	}
	tbl, err := open()
	if err != nil {
		return err
	}
	if tbl.Reread {
		l.log.Warn("the table's format or schema changed since its store was written; reading it anew from the topic's start", "topic", l.topic, "read_by", l.readBy())
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
			if !control && value != nil {
				ok, err := l.admit(ctx, p, offset, key, value)
				if err != nil {
					return err
				}
				if !ok {
					c.Value = nil // not a value of the table's schema: its key is missing
				}
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
		var stop failure.Stopper // the store failed, or the registry refuses to give the values' schemas
		if errors.As(err, &stop) {
			l.failed.Store(&err)
			l.log.Error("the table cannot be kept: lookups fail, and the pipeline stops", "topic", l.topic, "err", err)
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
			v, err := l.decode(ctx, raw)
			switch {
			case err == nil:
				return v, true, nil
			case ctx.Err() != nil:
				return nil, false, ctx.Err()
			}
			return nil, false, &TableValueError{Topic: l.topic, Key: string(key), Err: err}
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
		"restore_ms": time.Duration(l.restoreNs.Load()).Milliseconds(), "registry_waiting": 0, "registry_wait_ms": 0}
	if l.framed != nil {
		c["registry_waiting"], c["registry_wait_ms"] = l.framed.waiting.Load(), l.framed.waitedFor().Milliseconds()
	}
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
