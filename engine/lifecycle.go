package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// Run runs the pipeline until ctx ends (a graceful stop: the source stops reading, what is in
// flight finishes within drain, what is done is committed) or a fatal error. It returns once
// every goroutine it started has ended.
func (e *Engine) Run(ctx context.Context, src sources.Source, drain time.Duration) error {
	defer e.hardStop()
	srcCtx, stopSource := context.WithCancelCause(ctx)
	defer stopSource(nil)
	e.stopSource = stopSource
	defer context.AfterFunc(e.hard, func() { stopSource(nil) })()
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
	if err := e.openState(); err != nil {
		e.closeSinks()
		return err
	}
	if err := e.openTables(srcCtx); err != nil {
		e.closeTables()
		e.closeSinks()
		if cerr := e.closeState(); cerr != nil {
			e.log.Warn("closing the stores", "err", cerr)
		}
		if tablesInterrupted(srcCtx, err) {
			return nil // stopped while the tables were read: nothing was processed
		}
		return err
	}
	for _, n := range e.order {
		e.start(n)
	}
	var intake conc.WaitGroup
	in := sources.Intake{C: e.intake, Stopped: e.hard.Done(), Ticks: e.sourceTicks()} // before dispatch reads tickTo
	intake.Go(e.dispatchIntake)

	if len(e.state) > 0 {
		in.State = e
	}
	var tickers conc.WaitGroup
	stopTicks := make(chan struct{})
	if !e.p.ExactlyOnce() {
		for _, t := range e.tickings() {
			tickers.Go(func() { e.tick(t, stopTicks) })
		}
	}
	srcErr := src.Run(srcCtx, in)
	stopSource(nil)
	close(stopTicks)
	tickers.Wait() // before the stages' inputs close

	close(e.intake)
	intake.Wait()
	for _, n := range e.order { // predecessors come first: when a node's inputs close, no one sends to it
		if n.changes != nil && n.stage == nil {
			n.changes.close() // its stage's outputs may still settle: they send nothing more
		}
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
	for _, n := range e.changelogs {
		closeErr = errors.Join(closeErr, n.sink.Close(closeCtx))
	}
	for _, r := range e.repartitions {
		closeErr = errors.Join(closeErr, r.node.sink.Close(closeCtx))
	}
	if e.dlq != nil {
		closeErr = errors.Join(closeErr, e.dlq.Close(closeCtx))
	}
	closeErr = errors.Join(closeErr, e.closeState())
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

// Abort stops a run at once, as its drain running out would: whatever still blocks gives up
// and what is not done is not committed (a new run reads it again). Run still returns only
// once every goroutine it started has ended.
func (e *Engine) Abort() { e.hardStop() }

// openSinks opens the DLQ and the sinks; when one fails, those already open are closed.
func (e *Engine) openSinks() error {
	var opened []sinks.Sink
	fail := func(err error) error {
		for _, sk := range opened {
			_ = sk.Close(e.hard)
		}
		return err
	}
	if d := e.p.DLQ; d != nil {
		sk, err := e.open("dlq", d.Impl, e.reportDLQ)
		if err != nil {
			return fail(err)
		}
		e.dlq = sk
		opened = append(opened, sk)
		e.count("dlq", sk)
	}
	for _, c := range e.p.Sinks {
		n := e.nodes[c.Name]
		sk, err := e.open(c.Name, c.Impl, e.reporter(n))
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
func (e *Engine) count(name string, sk sinks.Sink) {
	if cs, ok := sk.(stages.Counting); ok {
		e.openMu.Lock()
		e.opened[name] = cs
		e.openMu.Unlock()
	}
}

func (e *Engine) dispatchIntake() {
	for batch := range e.intake {
		e.dispatch(batch)
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

// closeSinks closes every sink opened, for a run that cannot start.
func (e *Engine) closeSinks() {
	for _, n := range e.order {
		if n.sink != nil {
			_ = n.sink.Close(e.hard)
		}
	}
	if e.dlq != nil {
		_ = e.dlq.Close(e.hard)
	}
}
