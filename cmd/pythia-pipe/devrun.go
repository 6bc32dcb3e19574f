package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/pythia-pipe/pythia-pipe/metrics"
)

// devSignals delivers the interrupts dev answers (SIGINT, SIGTERM) until stop; tests replace it.
var devSignals = func() (sigs <-chan os.Signal, stop func()) {
	c := make(chan os.Signal, 2)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	return c, func() { signal.Stop(c) }
}

// syncWriter lets dev's lines about waits and its own lines share stdout.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// devRun is a running dev pipeline as its supervisor sees it: how it ends, what it can ask.
type devRun struct {
	done     <-chan error // the run's end
	sigs     <-chan os.Signal
	timeout  time.Duration // --timeout; 0: none
	follow   bool
	drain    time.Duration // the source's drain_timeout
	caughtUp func() bool
	stop     func() // a graceful stop: drain, commit
	abort    func() // a stop at once
	waits    func() []metrics.Wait
	out      io.Writer
}

// devEnd is how a dev run ended.
type devEnd struct {
	err   error
	how   string         // why dev stopped it early: "stopped by --timeout 20s"; "" otherwise
	waits []metrics.Wait // what waited when dev stopped it early
}

// supervise waits for the run to end: by itself, once the pipeline has caught up with the feed
// (unless --follow), at a Ctrl-C (a drain, like run's), at a second Ctrl-C or at --timeout (at
// once), or when the drain runs out. An early stop keeps what waited then, for the summary.
func (d devRun) supervise() devEnd {
	var end devEnd
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var timeout, drained <-chan time.Time
	if d.timeout > 0 {
		t := time.NewTimer(d.timeout)
		defer t.Stop()
		timeout = t.C
	}
	stopping, aborted := false, false
	var drainTimer *time.Timer
	defer func() {
		if drainTimer != nil {
			drainTimer.Stop()
		}
	}()
	stop := func() {
		stopping = true
		d.stop()
		drainTimer = time.NewTimer(d.drain)
		drained = drainTimer.C
	}
	abort := func(how string) {
		if aborted {
			return
		}
		aborted, end.how, end.waits = true, how, d.waits()
		d.abort()
		d.stop()
		timeout, drained = nil, nil
	}
	for {
		select {
		case end.err = <-d.done:
			return end
		case <-d.sigs:
			if !stopping {
				fmt.Fprintln(d.out, "draining: finishing the records in flight (Ctrl-C again to stop at once)")
				stop()
				continue
			}
			abort("stopped at the second Ctrl-C")
		case <-timeout:
			abort(fmt.Sprintf("stopped by --timeout %v", d.timeout))
		case <-drained:
			abort(fmt.Sprintf("stopped: the drain ran out (the source's drain_timeout, %v)", d.drain))
		case <-tick.C:
			if !stopping && !d.follow && d.caughtUp() {
				stop()
			}
		}
	}
}

// waitingLines are the summary's lines about unfinished records: those that waited in a stage
// when dev stopped the run, why, and the rest.
func waitingLines(unfinished int64, waits []metrics.Wait) []string {
	var lines []string
	held := int64(0)
	for _, w := range waits {
		switch {
		case w.Name == "":
			lines = append(lines, "waiting on Kafka: "+w.Why)
		case w.Records > 0:
			held += w.Records
			lines = append(lines, fmt.Sprintf("%d waiting in %s: %s for %v", w.Records, w.Name, w.Why, w.For))
		default:
			lines = append(lines, fmt.Sprintf("waiting in %s: %s for %v", w.Name, w.Why, w.For))
		}
	}
	if rest := unfinished - held; rest > 0 && len(lines) > 0 {
		lines = append(lines, fmt.Sprintf("%d more behind them, in flight or not read yet", rest))
	}
	return lines
}
