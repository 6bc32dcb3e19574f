// Package engine runs a validated pipeline: a goroutine group per stage joined by bounded
// channels, a writer per sink, the DLQ, and the one place a failed record's fate is acted on.
// engine.go builds the running graph; lifecycle.go starts and stops it; workers.go moves
// records through stages and into sinks; outcomes.go settles failures. The contract with
// sources is sources/contract.go; memory.go holds the in-memory source and sinks of tests
// and dev; kafka.go wires a pipeline to Kafka.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pythia-pipe/pythia-pipe/pipeline"

	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/stages"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// Observer is told what the engine measures around every stage and sink (the metrics):
// how long a stage took per record, and how old a record was when its sink's broker
// acknowledged it. The engine asks once per stage and sink for the function it then tells;
// stage code knows nothing of it.
type Observer interface {
	// StageDurations is told, once per batch, the time stage took per record of it.
	StageDurations(stage string) func(time.Duration)
	// Latencies is told, per record acknowledged, how old the record was.
	Latencies(sink string) func(time.Duration)
}

func ignore(time.Duration) {}

// OpenSink opens the sink called name ("dlq" for the dead-letter queue) as sk describes it;
// every outcome goes to report. Tests open sinks of their own in its place.
type OpenSink func(name string, sk sinks.Compiled, report sinks.Report) (sinks.Sink, error)

// Engine runs a validated pipeline: a goroutine group per stage joined by bounded channels
// of small batches, sinks fed by one writer each, and the DLQ.
type Engine struct {
	p    *pipeline.Pipeline
	log  *slog.Logger
	open OpenSink

	nodes  map[string]*node
	order  []*node // stages in topological order, then sinks
	entry  *node
	intake chan []*record.Record
	dlq    sinks.Sink
	stats  map[string]*counters

	hard       context.Context // ends at a hard stop: everything still blocked gives up
	hardStop   context.CancelFunc
	stopSource context.CancelCauseFunc

	fatalMu sync.Mutex
	fatal   error

	openMu sync.Mutex
	opened map[string]stages.Counting // the sinks with numbers of their own, once open

	state        []*stateful // the stateful stages, with their stores once open
	changelogs   []*node     // their changelogs' sink nodes, in the same order
	stateOpts    StateOptions
	memory       *state.Memory    // the run's stores', from openState to closeState
	repartitions []repartition    // repartition sinks, with Kafka (repartition.go)
	tickTo       map[string]*node // by topic: the stage the source's ticks go to (exactly-once)
	checkpointed time.Time        // when the stores' marks last moved (exactly-once; the source's loop alone)
	claimedMu    sync.Mutex
	claimed      map[string]map[int32]bool // the partitions the source has claimed, for ticks
	arrivals     map[string]arrival        // by repartition topic: the stage its records go to
}

// Observe sets the observer of stage durations and latencies; call it before Run.
func (e *Engine) Observe(o Observer) {
	for _, n := range e.nodes {
		if n.stage != nil {
			n.observe = o.StageDurations(n.name)
		} else {
			n.observe = o.Latencies(n.name)
		}
	}
}

// node is a stage or a sink in the running graph.
type node struct {
	name    string
	stage   stages.Stage // nil for sinks
	sink    sinks.Sink
	ins     []chan []*record.Record // one per worker with key ordering, else one shared
	workers int
	keyed   bool                // records keep their order by key
	targets []*node             // distinct targets of a stage
	observe func(time.Duration) // a stage's time per record, a sink's latencies (the metrics)
	ports   [][]int             // for each port, indexes into targets
	stats   *counters
	running conc.WaitGroup
	// changes, on a stateful stage under at-least-once, holds its changes until their
	// records' outputs are done (ordered.go); on its changelog node, the same queue, closed
	// before the node's input.
	changes *changeQueue
}

const (
	channelBatches = 16 // batches buffered per input channel
	closeGrace     = 5 * time.Second
	// keptAttempts is how many records that failed an attempt a retry remembers under
	// exactly_once: those of the transactions read again after an abort, and more.
	keptAttempts = 100_000
)

// NewEngine prepares p to run. Every stage must have a runtime.
func NewEngine(p *pipeline.Pipeline, open OpenSink, log *slog.Logger) (*Engine, error) {
	e := &Engine{p: p, log: log, open: open, nodes: map[string]*node{}, stats: map[string]*counters{}, opened: map[string]stages.Counting{},
		intake: make(chan []*record.Record, channelBatches)}
	e.hard, e.hardStop = context.WithCancel(context.Background())
	for _, st := range p.Stages {
		if st.Impl == nil {
			return nil, fmt.Errorf("stage %s: the %s stage type cannot run yet in this build (it validates, but its runtime is not written)", st.Name, st.Type)
		}
		if r, ok := st.Impl.(stages.Resumable); ok && p.ExactlyOnce() {
			r.KeepAttempts(keptAttempts)
		}
		n := &node{name: st.Name, stage: st.Impl, observe: ignore, workers: st.Workers, keyed: st.Ordering == "key", stats: e.counter(st.Name, "stage")}
		n.ins = makeInputs(st.Workers, st.Ordering == "key")
		e.nodes[st.Name] = n
	}
	for _, sk := range p.Sinks {
		e.nodes[sk.Name] = &node{name: sk.Name, observe: ignore, workers: 1, ins: makeInputs(1, true), stats: e.counter(sk.Name, "sink")}
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
	e.addChangelogs()
	for _, st := range p.InOrder() {
		e.order = append(e.order, e.nodes[st.Name])
	}
	for _, sk := range p.Sinks {
		e.order = append(e.order, e.nodes[sk.Name])
	}
	e.order = append(e.order, e.changelogs...)
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
