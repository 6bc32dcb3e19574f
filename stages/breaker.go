package stages

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pythia-pipe/pythia-pipe/failure"
)

// breaker watches the health of an enrich stage's service and makes records wait through its
// outages. It counts only the service's failures (timeouts, lost connections, 5xx, 429): a
// 4xx or an answer that is not JSON is the record's fault and shows that the service answers.
//
// After `failures` consecutive service failures the breaker opens: the service is down for
// everyone, so no record is to blame. Records then wait in admit, using up no attempt; one
// probe call goes out after a delay that starts at probeFirst and doubles up to cooldown; when
// a probe is answered the breaker closes and every waiting record calls again.
//
// It replaces sony/gobreaker, which fails calls fast while open but cannot tell a caller when
// the service is back (there is no way to wait for a state change) nor back off its probes.
type breaker struct {
	failures  int
	cooldown  time.Duration // the longest wait between probes
	maxOutage time.Duration // 0: wait for as long as the outage lasts

	mu          sync.Mutex
	state       breakerState
	consecutive int
	openedAt    time.Time     // when the current outage began
	probeAt     time.Time     // when the next probe may go out
	probesLost  int           // probes of this outage that failed: the next waits longer
	probing     bool          // a probe is in flight
	changed     chan struct{} // closed (and replaced) on every change waiters care about
	last        error         // the last service failure, for the outage error
	answeredAt  time.Time     // when the latest call the service answered began (for blame)

	waiting atomic.Int64 // records waiting in admit now
	outages atomic.Int64 // times the breaker opened
}

type breakerState int

// The states, numbered as the breaker_state metric shows them.
const (
	closed breakerState = iota
	halfOpen
	open
)

// probeFirst is the wait before the first probe of an outage: a restarting service is often
// back within seconds, and a probe a second is no load on one that is not.
const probeFirst = 500 * time.Millisecond

// probeWait is the wait before the next probe: probeFirst, doubling with each probe lost, at
// most cooldown (failure.Backoff, without jitter: one probe per stage is no crowd).
func (b *breaker) probeWait() time.Duration {
	return failure.Backoff(b.probesLost+1, probeFirst, b.cooldown, 2, 0)
}

func newBreaker(failures int, cooldown, maxOutage time.Duration) *breaker {
	return &breaker{failures: failures, cooldown: cooldown, maxOutage: maxOutage, changed: make(chan struct{})}
}

// OutageError stops the pipeline: the service has been down for longer than max_outage. It is
// never the record's fault, so the record is not dead-lettered and not committed.
type OutageError struct {
	For  time.Duration
	Last error // the last failure seen from the service
}

func (e *OutageError) Error() string {
	return fmt.Sprintf("the service has failed every call for %v, longer than max_outage: stopping without committing (the last failure: %v)",
		e.For.Round(time.Millisecond), e.Last)
}
func (e *OutageError) Unwrap() error { return e.Last }

// Stop marks the error as the pipeline's to stop on (see failure.Stopper).
func (*OutageError) Stop() {}

// admit returns when the caller may call the service: at once while the breaker is closed;
// during an outage, when it is the caller's turn to probe (probe is true) or the service is
// back. It fails when ctx ends or the outage outlasts max_outage.
func (b *breaker) admit(ctx context.Context) (probe bool, err error) {
	counted := false
	defer func() {
		if counted {
			b.waiting.Add(-1)
		}
	}()
	for {
		b.mu.Lock()
		now := time.Now()
		switch {
		case b.state == closed:
			b.mu.Unlock()
			return false, nil
		case b.maxOutage > 0 && now.Sub(b.openedAt) >= b.maxOutage:
			err := &OutageError{For: now.Sub(b.openedAt), Last: b.last}
			b.mu.Unlock()
			return false, err
		case !b.probing && !now.Before(b.probeAt):
			b.probing, b.state = true, halfOpen
			b.mu.Unlock()
			return true, nil
		}
		wake := b.probeAt.Sub(now)
		if b.probing {
			wake = b.cooldown // the probe's answer wakes us sooner
		}
		if b.maxOutage > 0 {
			wake = min(wake, b.openedAt.Add(b.maxOutage).Sub(now))
		}
		changed := b.changed
		b.mu.Unlock()
		if !counted {
			counted = true
			b.waiting.Add(1)
		}
		t := time.NewTimer(wake)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		}
		t.Stop()
	}
}

// answeredSince reports that the service answered a call that began after t: it was up for
// others then.
func (b *breaker) answeredSince(t time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.answeredAt.After(t)
}

// changes returns a channel closed at the breaker's next change.
func (b *breaker) changes() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// answer records a call, begun at began, that the service answered (a success, a 404 or
// another record fault): an outage ends.
func (b *breaker) answer(probe bool, began time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if began.After(b.answeredAt) {
		b.answeredAt = began
	}
	b.consecutive = 0
	if probe {
		b.probing = false
	}
	if b.state != closed {
		b.state = closed
		b.broadcast()
	}
}

// fail records a failure of the service; the failures-th in a row opens the breaker, and a
// failed probe puts the next one off. It reports an outage: the breaker is not closed.
func (b *breaker) fail(probe bool, err error) (outage bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = err
	now := time.Now()
	if probe {
		b.probing = false
	}
	switch {
	case probe && b.state != closed: // (another call's answer may have closed it meanwhile)
		b.state = open
		b.probesLost++
		b.probeAt = now.Add(b.probeWait())
		b.broadcast()
	case b.state == closed:
		b.consecutive++
		if b.consecutive >= b.failures {
			b.state, b.openedAt = open, now
			b.probesLost = 0
			b.probeAt = now.Add(b.probeWait())
			b.outages.Add(1)
			b.broadcast()
		}
	}
	return b.state != closed
}

// release gives back a probe that ended without an answer either way (the pipeline stopped).
func (b *breaker) release(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if b.state == halfOpen {
		b.state = open
	}
	b.broadcast()
}

// broadcast wakes every waiter; b.mu is held.
func (b *breaker) broadcast() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// stateNow is the state for the breaker_state metric.
func (b *breaker) stateNow() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// outageFor is how long the current outage has lasted (0 while the breaker is closed).
func (b *breaker) outageFor() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == closed {
		return 0
	}
	return time.Since(b.openedAt)
}
