package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/pythia-pipe/pythia-pipe/stages"
)

// openTables opens the tables of the stages looking up a table topic, each in its store
// under the state dir (<stage>-table), and waits until each is read to its topic's end:
// records flow only then. In memory (no StateOptions.Table) a table is empty.
func (e *Engine) openTables(ctx context.Context) error {
	for _, st := range e.p.Stages {
		u, ok := stages.TableUserOf(st.Impl)
		if !ok {
			continue
		}
		env := stages.TableEnv{Memory: e.memory, Log: e.log.With("stage", st.Name)}
		if e.stateOpts.Dir != "" {
			env.Dir = filepath.Join(e.stateOpts.Dir, st.Name+"-table")
		}
		if e.stateOpts.Table != nil {
			env.Topic = e.stateOpts.Table(u.TableTopic())
		}
		if err := u.OpenTable(ctx, env); err != nil {
			return fmt.Errorf("stage %s: its table %s: %w", st.Name, u.TableTopic(), err)
		}
	}
	return nil
}

// closeTables closes the table lookups when the run ends before its stages ran (their
// Close is otherwise the engine's, after their last record).
func (e *Engine) closeTables() {
	for _, st := range e.p.Stages {
		if u, ok := stages.TableUserOf(st.Impl); ok {
			u.Close()
		}
	}
}

// tablesInterrupted reports whether err is the run stopped while its tables were restored.
func tablesInterrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, ctx.Err())
}

// MemoryTable is a table topic in memory (pythia-pipe test's tables): one partition of
// records, key and value (nil: a tombstone), in order, that never changes.
type MemoryTable [][2][]byte

// Ends implements state.TableTopic.
func (m MemoryTable) Ends(context.Context) (map[int32]int64, error) {
	return map[int32]int64{0: int64(len(m))}, nil
}

// Follow implements state.TableTopic: the records, then nothing until ctx ends.
func (m MemoryTable) Follow(ctx context.Context, from map[int32]int64, apply func(int32, int64, []byte, []byte, bool) error) error {
	for o := from[0]; o < int64(len(m)); o++ {
		if err := apply(0, o, m[o][0], m[o][1], false); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// Unchanging says that nothing is worth waiting for: the table never changes.
func (MemoryTable) Unchanging() bool { return true }
