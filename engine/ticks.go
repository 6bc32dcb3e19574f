package engine

import (
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// Stages that close windows by the clock (an aggregate's idle_close) are handed ticks: a
// record.Record with Tick set, per partition of their input, every TickEvery. Under
// at-least-once the engine makes them, for the partitions the source has claimed; a tick's
// outputs and changes are tracked by no offset, and its changes wait for its outputs
// (ordered.go), so a crash loses nothing. Under exactly-once a tick's outputs must be in a
// transaction: the source makes them, in its transactions (sources.Ticks).

// ticking is a stage taking ticks, and the topic whose partitions it ticks.
type ticking struct {
	node  *node
	every time.Duration
	topic string
}

// tickings lists the stages that take ticks.
func (e *Engine) tickings() []ticking {
	var out []ticking
	for _, s := range e.state {
		t, ok := s.stage.(stages.Ticking)
		if !ok || t.TickEvery() <= 0 || s.input == "" {
			continue
		}
		out = append(out, ticking{node: e.nodes[s.name], every: t.TickEvery(), topic: s.input})
	}
	return out
}

// sourceTicks is what an exactly-once source is asked to tick, nil when nothing is; it
// notes where each topic's ticks go (tickTo), for dispatch.
func (e *Engine) sourceTicks() *sources.Ticks {
	ts := e.tickings()
	if len(ts) == 0 || !e.p.ExactlyOnce() {
		return nil
	}
	t := &sources.Ticks{Every: ts[0].every}
	e.tickTo = map[string]*node{}
	for _, x := range ts {
		t.Every = min(t.Every, x.every)
		t.Topics = append(t.Topics, x.topic)
		e.tickTo[x.topic] = x.node
	}
	return t
}

// tick hands, every t.every until stop closes, a tick for each partition of t.topic the
// source has claimed (at-least-once).
func (e *Engine) tick(t ticking, stop <-chan struct{}) {
	timer := time.NewTicker(t.every)
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case <-e.hard.Done():
			return
		case <-timer.C:
		}
		var batch []*record.Record
		for _, p := range e.claimedOf(t.topic) {
			batch = append(batch, &record.Record{Topic: t.topic, Partition: p, Offset: -1, Tick: true,
				Track: record.NewTracker(untracked{}, 0)})
		}
		if len(batch) > 0 {
			t.node.send(e.hard, batch)
		}
	}
}

// untracked settles what no offset waits for: a tick.
type untracked struct{}

func (untracked) Settle(uint64) {}

// claimedOf lists the partitions of topic the source has claimed.
func (e *Engine) claimedOf(topic string) []int32 {
	e.claimedMu.Lock()
	defer e.claimedMu.Unlock()
	var out []int32
	for p := range e.claimed[topic] {
		out = append(out, p)
	}
	return out
}

// claim notes a partition claimed (in) or released.
func (e *Engine) claim(topic string, p int32, in bool) {
	e.claimedMu.Lock()
	defer e.claimedMu.Unlock()
	if e.claimed == nil {
		e.claimed = map[string]map[int32]bool{}
	}
	if e.claimed[topic] == nil {
		e.claimed[topic] = map[int32]bool{}
	}
	if in {
		e.claimed[topic][p] = true
	} else {
		delete(e.claimed[topic], p)
	}
}
