package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/stages"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// StateOptions are where a run's stateful stages keep their stores and read their
// changelogs from.
type StateOptions struct {
	Dir        string // "" keeps the stores in memory (pythia-pipe test)
	CacheBytes int64
	// Changelog reads a changelog topic for restores; nil: every changelog is empty (a run
	// in memory starts with no state).
	Changelog func(topic string) state.Changelog
	// Table reads a table lookup's topic (enrich's table); nil: every table is empty (a
	// run in memory).
	Table func(topic string) state.TableTopic
	// Repartition sends the records of stages keeping state by a computed key through
	// their repartition topics (a run on Kafka, whose source reads them).
	Repartition bool
}

// UseState sets where the stateful stages keep their state; call it once, before Run.
// Without it their stores are in memory and start empty.
func (e *Engine) UseState(o StateOptions) {
	e.stateOpts = o
	if o.Repartition {
		e.addRepartitions()
	}
}

// stateful is a stateful stage of the running graph and its stores.
type stateful struct {
	name   string
	stage  stages.Stateful
	topic  string // its changelog
	input  string // the topic whose partitions its stores are: its repartition topic, or the source's
	stores *state.Stores
}

// holds reports whether the stage's stores are topic's partitions'.
func (s *stateful) holds(topic string) bool { return s.input == "" || s.input == topic }

// addChangelogs gives each stateful stage a sink node for its changelog, by its
// ChangelogPort; the node is not one of the file's sinks.
func (e *Engine) addChangelogs() {
	for _, st := range e.p.Stateful() {
		n := e.nodes[st.Name]
		name := st.Name + ".changelog"
		cl := &node{name: name, observe: ignore, workers: 1, ins: makeInputs(1, true), stats: e.counter(name, "changelog")}
		e.nodes[name] = cl
		for len(n.ports) < stages.ChangelogPort {
			n.ports = append(n.ports, nil)
		}
		n.targets = append(n.targets, cl)
		n.ports = append(n.ports, []int{len(n.targets) - 1})
		e.changelogs = append(e.changelogs, cl)
		if !e.p.ExactlyOnce() {
			n.changes = &changeQueue{to: cl, hard: e.hard}
			cl.changes = n.changes
		}
		input := e.p.Repartition(st)
		if k := e.p.KafkaSource(); input == "" && k != nil && len(k.Topics) > 0 {
			input = k.Topics[0]
		}
		e.state = append(e.state, &stateful{name: st.Name, stage: st.Impl.(stages.Stateful), topic: e.p.Changelog(st.Name), input: input})
	}
}

// openState opens each stateful stage's changelog writer and gives it its stores, and the
// repartition topics' writers.
func (e *Engine) openState() error {
	if err := e.openRepartitions(); err != nil {
		return err
	}
	e.memory = state.NewMemory(e.stateOpts.CacheBytes)
	for i, s := range e.state {
		n := e.changelogs[i]
		sk, err := e.open(n.name, sinks.Changelog(s.name, s.topic), e.reportChangelog(n, s))
		if err != nil {
			return fmt.Errorf("stage %s: its changelog %s: %w", s.name, s.topic, err)
		}
		n.sink = sk
		var cl state.Changelog = emptyChangelog{}
		if e.stateOpts.Changelog != nil {
			cl = e.stateOpts.Changelog(s.topic)
		}
		dir := ""
		if e.stateOpts.Dir != "" {
			dir = filepath.Join(e.stateOpts.Dir, s.name)
		}
		s.stores = state.NewStores(state.Options{Dir: dir, Memory: e.memory, Log: e.log.With("stage", s.name),
			Transactional: e.p.ExactlyOnce(), Count: s.stage.Count}, cl, s.stage.Restore)
		s.stage.OpenState(s.stores)
	}
	return nil
}

// reportChangelog settles a change: its record is done once the changelog has it. A change
// the changelog refuses for good stops the pipeline: the store would hold what it cannot
// be restored from.
func (e *Engine) reportChangelog(n *node, s *stateful) sinks.Report {
	return func(rec *record.Record, err error) {
		switch {
		case err == nil:
			n.stats.acked.Add(1)
			rec.Track.Done()
		case errors.Is(err, sinks.ErrAborted):
			rec.Track.Done()
		default:
			n.stats.failed.Add(1)
			e.stopOnError(fmt.Errorf("stage %s: its changelog %s cannot take a change of %s/%d@%d, so the pipeline stops without committing it: %w",
				s.name, s.topic, rec.Topic, rec.Partition, rec.Offset, err))
		}
	}
}

// Claimed implements sources.StateHooks: a store left open by records of a partition
// this instance lost is stale, and is read again from its changelog.
func (e *Engine) Claimed(topic string, partition int32) {
	e.claim(topic, partition, true)
	e.releaseStores(topic, partition, false)
}

// Released implements sources.StateHooks: the partition's stores close, marked clean
// when all its records are done (their changes are in the changelog).
func (e *Engine) Released(topic string, partition int32, done bool) {
	e.claim(topic, partition, false)
	e.releaseStores(topic, partition, done)
}

// releaseStores closes the stores of the stages holding topic's partition, clean or not.
func (e *Engine) releaseStores(topic string, partition int32, clean bool) {
	for _, s := range e.state {
		if !s.holds(topic) {
			continue
		}
		if err := s.stores.Release(e.hard, partition, clean); err != nil {
			e.log.Warn("closing a store", "stage", s.name, "partition", partition, "clean", clean, "err", err)
		}
		s.stage.Released(partition)
	}
}

// Committed implements sources.StateHooks: the stores keep the transaction's changes, and
// every checkpointEvery their marks move to their changelogs' ends (a ListOffsets each).
func (e *Engine) Committed() {
	checkpoint := time.Since(e.checkpointed) >= checkpointEvery
	for _, s := range e.state {
		if err := s.stores.Commit(); err != nil {
			e.stopOnError(fmt.Errorf("stage %s: %w", s.name, err))
			return
		}
		if checkpoint {
			if err := s.stores.Checkpoint(e.hard); err != nil {
				e.log.Warn("a store's mark could not move: a restart after a crash reads more of its changelog", "stage", s.name, "err", err)
			}
		}
	}
	if checkpoint {
		e.checkpointed = time.Now()
	}
}

// checkpointEvery is how often, under exactly-once, the stores' marks move on: what a restart
// after a crash reads again of a changelog is about this much of its writes.
const checkpointEvery = 10 * time.Second

// Aborted implements sources.StateHooks: the stores drop the transaction's changes. When the
// broker may have committed it after all, they are closed, to be read again from their
// changelogs (which hold it then).
func (e *Engine) Aborted(unsure bool) {
	for _, s := range e.state {
		err := s.stores.Discard()
		if unsure {
			parts, rerr := s.stores.ReleaseAll(e.hard, false)
			for _, p := range parts {
				s.stage.Released(p)
			}
			err = errors.Join(err, rerr)
		}
		if err != nil {
			e.stopOnError(fmt.Errorf("stage %s: %w", s.name, err))
		}
	}
}

// closeState closes the stores still open: not marked clean, for their partitions were not
// released with every record done.
func (e *Engine) closeState() error {
	var err error
	for _, s := range e.state {
		if s.stores != nil {
			err = errors.Join(err, s.stores.Close(e.hard, false))
		}
	}
	if e.memory != nil {
		e.memory.Close()
		e.memory = nil
	}
	return err
}

// emptyChangelog is the changelog of a run with no Kafka: nothing to restore.
type emptyChangelog struct{}

func (emptyChangelog) End(context.Context, int32) (int64, error) { return 0, nil }
func (emptyChangelog) Read(context.Context, int32, int64, int64, func(k, v []byte) error) error {
	return nil
}
