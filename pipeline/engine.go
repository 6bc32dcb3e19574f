package pipeline

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// Source is where an engine's records come from: the Kafka consumer group in production,
// records in memory for tests. Run hands batches to in until ctx ends, then returns once what
// it handed on is settled (or its drain timeout passed) and committed. Every record carries a
// Tracker the engine completes when the record and all its copies are done.
type Source interface {
	Run(ctx context.Context, in sources.Intake) error
}

// Sink is where records end. Write may block while the sink is full; the outcome of every
// record written reaches the Report given when the sink was opened, exactly once. Close
// waits for the outstanding outcomes until ctx ends.
type Sink interface {
	Write(ctx context.Context, recs []*record.Record) error
	Close(ctx context.Context) error
}

// Observer is told what the engine measures around every stage and sink (the metrics):
// how long a stage took over a record, and how old a record was when its sink's broker
// acknowledged it. Stage code knows nothing of it.
type Observer interface {
	StageDuration(stage string, d time.Duration)
	Latency(sink string, d time.Duration)
}

type noObserver struct{}

func (noObserver) StageDuration(string, time.Duration) {}
func (noObserver) Latency(string, time.Duration)       {}

// OpenSink opens the sink called name ("dlq" for the dead-letter queue) writing to target.
type OpenSink func(name string, target sinks.Target, producer sinks.Producer, report sinks.Report) (Sink, error)

// Engine runs a validated pipeline: a goroutine group per stage joined by bounded channels
// of small batches, sinks fed by one writer each, and the DLQ.
type Engine struct {
	p    *Pipeline
	log  *slog.Logger
	open OpenSink

	nodes  map[string]*node
	order  []*node // stages in topological order, then sinks
	entry  *node
	intake chan []*record.Record
	dlq    Sink
	stats  map[string]*counters

	hard       context.Context // ends at a hard stop: everything still blocked gives up
	hardStop   context.CancelFunc
	stopSource context.CancelCauseFunc

	fatalMu sync.Mutex
	fatal   error

	openMu sync.Mutex
	opened map[string]stages.Counting // the sinks with numbers of their own, once open

	obs Observer
}

// Observe sets the observer of stage durations and latencies; call it before Run.
func (e *Engine) Observe(o Observer) { e.obs = o }

// node is a stage or a sink in the running graph.
type node struct {
	name    string
	stage   stages.Stage // nil for sinks
	sink    Sink
	ins     []chan []*record.Record // one per worker with key ordering, else one shared
	workers int
	keyed   bool    // records keep their order by key
	targets []*node // distinct targets of a stage
	ports   [][]int // for each port, indexes into targets
	stats   *counters
	running conc.WaitGroup
}

const (
	channelBatches = 16 // batches buffered per input channel
	closeGrace     = 5 * time.Second
)

// NewEngine prepares p to run. Every stage must have a runtime.
func NewEngine(p *Pipeline, open OpenSink, log *slog.Logger) (*Engine, error) {
	e := &Engine{p: p, log: log, open: open, nodes: map[string]*node{}, stats: map[string]*counters{}, opened: map[string]stages.Counting{},
		intake: make(chan []*record.Record, channelBatches), obs: noObserver{}}
	for _, st := range p.Stages {
		if st.Impl == nil {
			return nil, fmt.Errorf("stage %s: the %s stage type cannot run yet in this build (it validates, but its runtime is not written)", st.Name, st.Type)
		}
		n := &node{name: st.Name, stage: st.Impl, workers: st.Workers, keyed: st.Ordering == "key", stats: e.counter(st.Name, "stage")}
		n.ins = makeInputs(st.Workers, st.Ordering == "key")
		e.nodes[st.Name] = n
	}
	for _, sk := range p.Sinks {
		e.nodes[sk.Name] = &node{name: sk.Name, workers: 1, ins: makeInputs(1, true), stats: e.counter(sk.Name, "sink")}
	}
	for _, st := range p.Stages {
		n := e.nodes[st.Name]
		index := map[string]int{}
		for _, port := range st.Ports {
			var idx []int
			for _, t := range port.To {
				i, ok := index[t]
				if !ok {
					i = len(n.targets)
					index[t] = i
					n.targets = append(n.targets, e.nodes[t])
				}
				idx = append(idx, i)
			}
			n.ports = append(n.ports, idx)
		}
	}
	for _, st := range topoOrder(p) {
		e.order = append(e.order, e.nodes[st.Name])
	}
	for _, sk := range p.Sinks {
		e.order = append(e.order, e.nodes[sk.Name])
	}
	e.entry = e.nodes[p.Entry[0]]
	e.counter("dlq", "dlq")
	return e, nil
}

func makeInputs(workers int, keyed bool) []chan []*record.Record {
	n := 1
	if keyed {
		n = workers
	}
	ins := make([]chan []*record.Record, n)
	for i := range ins {
		ins[i] = make(chan []*record.Record, channelBatches)
	}
	return ins
}

func (e *Engine) counter(name, kind string) *counters {
	c := &counters{kind: kind}
	e.stats[name] = c
	return c
}

// counting returns the stage or sink called name when it keeps numbers of its own. Sinks are
// opened by Run, while metrics may already read.
func (e *Engine) counting(name string) stages.Counting {
	if n := e.nodes[name]; n != nil && n.stage != nil {
		cs, _ := n.stage.(stages.Counting)
		return cs
	}
	e.openMu.Lock()
	defer e.openMu.Unlock()
	return e.opened[name]
}

// Stats reads the counters of every stage and sink.
func (e *Engine) Stats() Stats {
	s := Stats{}
	for name, c := range e.stats {
		ns := c.snapshot()
		if cs := e.counting(name); cs != nil {
			ns.Stage = cs.Counters()
		}
		s[name] = ns
	}
	return s
}

// Run runs the pipeline until ctx ends (a graceful stop: the source stops reading, what is in
// flight finishes within drain, what is done is committed) or a fatal error. It returns once
// every goroutine it started has ended.
func (e *Engine) Run(ctx context.Context, src Source, drain time.Duration) error {
	e.hard, e.hardStop = context.WithCancel(context.Background())
	defer e.hardStop()
	srcCtx, stopSource := context.WithCancelCause(ctx)
	defer stopSource(nil)
	e.stopSource = stopSource
	// A stop starts the drain clock; past it (and a grace), whatever still blocks gives up.
	var hardTimer *time.Timer
	var timerMu sync.Mutex
	stopWatch := context.AfterFunc(srcCtx, func() {
		timerMu.Lock()
		hardTimer = time.AfterFunc(drain+closeGrace, e.hardStop)
		timerMu.Unlock()
	})
	defer func() {
		stopWatch()
		timerMu.Lock()
		if hardTimer != nil {
			hardTimer.Stop()
		}
		timerMu.Unlock()
	}()

	if err := e.openSinks(); err != nil {
		return err
	}
	for _, n := range e.order {
		e.start(n)
	}
	var intake conc.WaitGroup
	intake.Go(e.dispatchIntake)

	srcErr := src.Run(srcCtx, sources.Intake{C: e.intake, Stopped: e.hard.Done()})
	stopSource(nil)

	close(e.intake)
	intake.Wait()
	for _, n := range e.order { // predecessors come first: when a node's inputs close, no one sends to it
		for _, in := range n.ins {
			close(in)
		}
		n.running.Wait()
		if c, ok := n.stage.(stages.Closer); ok {
			c.Close()
		}
	}
	closeCtx, cancel := context.WithTimeout(e.hard, drain+closeGrace)
	defer cancel()
	var closeErr error
	for _, sk := range e.p.Sinks {
		closeErr = errors.Join(closeErr, e.nodes[sk.Name].sink.Close(closeCtx))
	}
	if e.dlq != nil {
		closeErr = errors.Join(closeErr, e.dlq.Close(closeCtx))
	}
	switch {
	case e.fatalErr() != nil:
		return e.fatalErr()
	case srcErr != nil:
		return srcErr
	case closeErr != nil:
		e.log.Warn("sinks closed with records not acknowledged; they will be read again", "err", closeErr)
	}
	return nil
}

// openSinks opens the DLQ and the sinks; when one fails, those already open are closed.
func (e *Engine) openSinks() error {
	var opened []Sink
	fail := func(err error) error {
		for _, sk := range opened {
			_ = sk.Close(e.hard)
		}
		return err
	}
	if d := e.p.DLQ; d != nil {
		sk, err := e.open("dlq", sinks.Target{Name: "dlq", Topic: d.Topic, DLQ: true}, d.Producer, e.reportDLQ)
		if err != nil {
			return fail(err)
		}
		e.dlq = sk
		opened = append(opened, sk)
		e.count("dlq", sk)
	}
	for _, c := range e.p.Sinks {
		n := e.nodes[c.Name]
		sk, err := e.open(c.Name, sinks.Target{Name: c.Name, Topic: c.Topic, TopicExpr: c.TopicExpr, Allow: c.Allow, Key: c.Key, Encode: c.Encode}, c.Producer, e.reporter(n))
		if err != nil {
			return fail(err)
		}
		n.sink = sk
		opened = append(opened, sk)
		e.count(c.Name, sk)
	}
	return nil
}

// count remembers an open sink that keeps numbers of its own.
func (e *Engine) count(name string, sk Sink) {
	if cs, ok := sk.(stages.Counting); ok {
		e.openMu.Lock()
		e.opened[name] = cs
		e.openMu.Unlock()
	}
}

func (e *Engine) dispatchIntake() {
	for batch := range e.intake {
		e.entry.send(e.hard, batch)
	}
}

func (e *Engine) start(n *node) {
	async, isAsync := n.stage.(stages.AsyncStage)
	for w := 0; w < n.workers; w++ {
		in := n.ins[w%len(n.ins)]
		switch {
		case n.sink != nil:
			n.running.Go(func() { e.writeSink(n, in) })
		case isAsync:
			n.running.Go(func() { e.workAsync(n, in, async, n.keyed) })
		default:
			n.running.Go(func() { e.work(n, in) })
		}
	}
}

// send hands a batch to a node; with key ordering each key goes to one worker, so records
// with the same key keep their order. It gives up (dropping the batch, which then is never
// committed) only when ctx ends.
func (n *node) send(ctx context.Context, batch []*record.Record) {
	if len(n.ins) == 1 {
		select {
		case n.ins[0] <- batch:
		case <-ctx.Done():
		}
		return
	}
	parts := make([][]*record.Record, len(n.ins))
	for _, r := range batch {
		i := workerFor(r, len(n.ins))
		parts[i] = append(parts[i], r)
	}
	for i, part := range parts {
		if len(part) == 0 {
			continue
		}
		select {
		case n.ins[i] <- part:
		case <-ctx.Done():
			return
		}
	}
}

// workerFor picks the worker of a record: by key, or by partition for records without one.
func workerFor(r *record.Record, n int) int {
	if r.Key == nil {
		return int(r.Partition) % n
	}
	h := fnv.New32a()
	h.Write(r.Key)
	return int(h.Sum32() % uint32(n))
}

// work is one worker of a stage: it processes batches, counts, and passes outputs on.
func (e *Engine) work(n *node, in <-chan []*record.Record) {
	outs := make([]stages.Output, 0, 4)
	bufs := make([][]*record.Record, len(n.targets))
	for batch := range in {
		var c tally
		for _, rec := range batch {
			began := time.Now()
			var err error
			outs, err = n.stage.Process(e.hard, rec, outs[:0])
			e.obs.StageDuration(n.name, time.Since(began))
			e.route(n, rec, outs, err, bufs, &c)
		}
		c.add(n.stats)
		e.flush(n, bufs)
	}
}

// tally counts a batch's outcomes, added to the node's counters once per batch.
type tally struct{ received, emitted, dropped, failed int64 }

func (c *tally) add(s *counters) {
	s.received.Add(c.received)
	s.emitted.Add(c.emitted)
	s.dropped.Add(c.dropped)
	s.errors.Add(c.failed)
}

// route settles what one record became at stage n: a failure goes to the DLQ, no output is
// done, outputs are copied to their ports' targets (buffered in bufs until flush).
func (e *Engine) route(n *node, rec *record.Record, outs []stages.Output, err error, bufs [][]*record.Record, c *tally) {
	c.received++
	if err != nil {
		c.failed++
		e.outcome(n, rec, err)
		return
	}
	copies := 0
	for _, o := range outs {
		copies += len(n.ports[o.Port])
	}
	if copies == 0 {
		c.dropped++
		rec.Track.Done()
		return
	}
	c.emitted += int64(len(outs))
	rec.Track.Add(copies - 1) // before any copy moves on
	for _, o := range outs {
		for j, t := range n.ports[o.Port] {
			r := o.Rec
			if j > 0 {
				r = o.Rec.Clone()
			}
			bufs[t] = append(bufs[t], r)
		}
	}
}

func (e *Engine) flush(n *node, bufs [][]*record.Record) {
	for t, b := range bufs {
		if len(b) > 0 {
			n.targets[t].send(e.hard, b)
			bufs[t] = nil // the target owns it now
		}
	}
}

// asyncLimit bounds the records an asynchronous worker holds (waiting or queued behind one).
const asyncLimit = 1024

// workAsync is a worker of a stage that can wait without holding the worker (a retry). Each
// record is started and finishes whenever it does; with key ordering, a record whose key has
// one in progress waits behind it, so a key keeps its order while other keys go on.
func (e *Engine) workAsync(n *node, in <-chan []*record.Record, st stages.AsyncStage, keyed bool) {
	type completion struct {
		rec   *record.Record
		key   string // the order key the record had when it started: the stage may change its key
		outs  []stages.Output
		err   error
		began time.Time
	}
	done := make(chan completion, asyncLimit)
	bufs := make([][]*record.Record, len(n.targets))
	queued := map[string][]*record.Record{} // by key: records waiting behind the one in progress
	inflight := 0
	start := func(rec *record.Record, key string) {
		began := time.Now()
		st.Start(e.hard, rec, func(outs []stages.Output, err error) { done <- completion{rec, key, outs, err, began} })
	}
	closed := false
	for !closed || inflight > 0 {
		intake := in
		if closed || inflight >= asyncLimit {
			intake = nil
		}
		select {
		case batch, ok := <-intake:
			if !ok {
				closed = true
				continue
			}
			for _, rec := range batch {
				inflight++
				if !keyed {
					start(rec, "")
					continue
				}
				k := orderKey(rec)
				if q, busy := queued[k]; busy {
					queued[k] = append(q, rec)
					continue
				}
				queued[k] = nil
				start(rec, k)
			}
		case c := <-done:
			inflight--
			e.obs.StageDuration(n.name, time.Since(c.began))
			var t tally
			e.route(n, c.rec, c.outs, c.err, bufs, &t)
			t.add(n.stats)
			e.flush(n, bufs)
			if keyed {
				if q := queued[c.key]; len(q) > 0 {
					queued[c.key] = q[1:]
					start(q[0], c.key)
				} else {
					delete(queued, c.key)
				}
			}
		}
	}
}

// orderKey is what records must keep their order by: the key, or the partition without one.
func orderKey(r *record.Record) string {
	if r.Key == nil {
		return "\x00partition:" + strconv.Itoa(int(r.Partition))
	}
	return string(r.Key)
}

func (e *Engine) writeSink(n *node, in <-chan []*record.Record) {
	for batch := range in {
		if err := n.sink.Write(e.hard, batch); err != nil {
			return // a hard stop: the rest is never acknowledged, so never committed
		}
	}
}

// reporter returns the outcome handler of a sink node.
func (e *Engine) reporter(n *node) sinks.Report {
	return func(rec *record.Record, err error) {
		if err != nil {
			n.stats.failed.Add(1)
			e.outcome(n, rec, err)
			return
		}
		n.stats.acked.Add(1)
		if !rec.Timestamp.IsZero() {
			e.obs.Latency(n.name, time.Since(rec.Timestamp))
		}
		rec.Track.Done()
	}
}

func (e *Engine) reportDLQ(rec *record.Record, err error) {
	if err != nil {
		e.stats["dlq"].failed.Add(1)
		e.outcome(nil, rec, err)
		return
	}
	e.stats["dlq"].acked.Add(1)
	rec.Track.Done()
}

// StageError is a record that failed at a stage (or sink) of a pipeline without a DLQ.
type StageError struct {
	Stage     string
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *StageError) Error() string {
	return fmt.Sprintf("%s failed on %s/%d@%d: %v (no dlq is configured, so the pipeline stops here and does not commit this record)",
		e.Stage, e.Topic, e.Partition, e.Offset, e.Err)
}
func (e *StageError) Unwrap() error { return e.Err }

// attempter is an error that knows how often its stage tried (retry stages).
type attempter interface{ Attempts() int }

// outcome is the one place a failed record's fate is settled, as failure.Judge decided it:
// dead-lettered (or, without a DLQ, the pipeline stops), the pipeline stopped, or left
// unsettled while the pipeline stops at once. n is the stage or sink the record failed at;
// nil when the DLQ itself could not take it. Sinks wait out passing failures themselves:
// no write they could retry reaches here.
func (e *Engine) outcome(n *node, rec *record.Record, err error) {
	var f *failure.Error
	if !errors.As(err, &f) {
		f = failure.Judge(failure.Process, "stage "+n.name, "", err)
		if f.Outcome == failure.Wait && e.hard.Err() == nil {
			f.Outcome = failure.DeadLetter // cancelled by something else than the pipeline's stop: the record's
		}
	}
	switch {
	case f.Outcome == failure.Wait:
		// A stage cut short by a hard stop: not done, so read again after a restart.
		e.log.Debug("record left unfinished", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
	case f.Outcome == failure.Stop:
		e.fail(f)
	case n == nil:
		e.fail(fmt.Errorf("the dead-letter queue cannot take the record %s/%d@%d, so the pipeline stops without committing it: %w",
			rec.Topic, rec.Partition, rec.Offset, f))
	case e.dlq == nil:
		e.fail(&StageError{Stage: n.name, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Err: f.Err})
	default:
		e.deadLetter(n, rec, f)
	}
}

// deadLetter writes the record that failed at n to the DLQ.
func (e *Engine) deadLetter(n *node, rec *record.Record, f *failure.Error) {
	attempts := 1
	var a attempter
	if errors.As(f.Err, &a) {
		attempts = a.Attempts()
	}
	n.stats.deadLettered.Add(1)
	e.log.Debug("dead-lettered", "stage", n.name, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", f.Reason())
	d := sinks.DLQRecord(rec, sinks.Failure{Pipeline: e.p.Name, Stage: n.name, Reason: f.Reason(), Attempts: attempts, At: time.Now()})
	if werr := e.dlq.Write(e.hard, []*record.Record{d}); werr != nil {
		e.log.Debug("not dead-lettered: the pipeline stops at once", "stage", n.name, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
	}
}

// fail records the first fatal error and stops the source: what is done is still committed,
// the failed record and what follows it in its partition are not.
func (e *Engine) fail(err error) {
	e.fatalMu.Lock()
	first := e.fatal == nil
	if first {
		e.fatal = err
	}
	e.fatalMu.Unlock()
	if first {
		e.log.Error("stopping the pipeline", "err", err)
		e.stopSource(sources.ErrAbort) // no drain: what failed will not finish
	}
}

func (e *Engine) fatalErr() error {
	e.fatalMu.Lock()
	defer e.fatalMu.Unlock()
	return e.fatal
}
