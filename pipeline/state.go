package pipeline

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// stateField is the `state` block: where stateful stages keep their stores.
var stateField = spec.Object("state", "Where stateful stages (dedupe, aggregate) keep their stores: a local database per stage and input partition, backed by a compacted changelog topic `<group>-<stage>-changelog` from which a lost store is rebuilt; and where table lookups keep their tables.",
	spec.String("dir", "The stores' folder, relative to the working directory; a folder per stage and partition below it. Deleted or lost, it is rebuilt from the changelog topics.").WithDefault("state"),
	spec.Size("cache", "The memory all the stores of the pipeline share, every stateful stage's and table lookup's: the blocks they read and the writes they gather before writing them to disk (each open partition's store up to two 32nds of it). State larger than it stays on disk.").WithDefault("64MiB").AtLeast(1<<20),
)

// State is the `state` block.
type State struct {
	Dir        string
	CacheBytes int64
}

// Stateful lists the stages that keep state, in the order of the file.
func (p *Pipeline) Stateful() []*Stage {
	var out []*Stage
	for _, st := range p.Stages {
		if _, ok := st.Impl.(stages.Stateful); ok {
			out = append(out, st)
		}
	}
	return out
}

// TableTopics lists the topics the stages' table lookups read (enrich's table), once each.
func (p *Pipeline) TableTopics() []string {
	var out []string
	for _, st := range p.Stages {
		if u, ok := stages.TableUserOf(st.Impl); ok && !slices.Contains(out, u.TableTopic()) {
			out = append(out, u.TableTopic())
		}
	}
	return out
}

// TableTopicPlans lists the table topics that are not also the pipeline's own topics, as
// `topics create` makes them: compacted (a table keeps each key's latest value), with the
// partitions and replication factor of the source's `create` block.
func (p *Pipeline) TableTopicPlans() []kafkaconn.Topic {
	own := map[string]bool{}
	for _, t := range p.TopicPlans() {
		own[t.Name] = true
	}
	var out []kafkaconn.Topic
	for _, name := range p.TableTopics() {
		if own[name] {
			continue
		}
		t := kafkaconn.Topic{Name: name, Partitions: 1, ReplicationFactor: 1}
		if k := p.KafkaSource(); k != nil && k.Create != nil {
			t = kafkaconn.TopicFromValue(name, k.Create)
		}
		t.Configs = map[string]string{"cleanup.policy": "compact"}
		out = append(out, t)
	}
	return out
}

// Changelog is the changelog topic of stage: `<group>-<stage>-changelog`, as Kafka Streams
// names its own, so that two pipelines (two groups) never share one.
func (p *Pipeline) Changelog(stage string) string {
	return p.group() + "-" + stage + "-changelog"
}

// Repartition is the topic stage's records go through to meet by its key, as Kafka Streams
// repartitions: "" when the stage keeps state by the record's key, which the source's
// partitions already group.
func (p *Pipeline) Repartition(stage *Stage) string {
	s, ok := stage.Impl.(stages.Stateful)
	if !ok || s.StateKey() == nil {
		return ""
	}
	return p.group() + "-" + stage.Name + "-repartition"
}

func (p *Pipeline) group() string {
	if k := p.KafkaSource(); k != nil && k.Group != "" {
		return k.Group
	}
	return p.Name
}

// StateNotes says, per stateful stage, where its state lives and where its records are
// repartitioned, for validate to print.
func (p *Pipeline) StateNotes() []string {
	var notes []string
	for _, st := range p.Stateful() {
		n := fmt.Sprintf("stage %s keeps its state in %s, a store per partition", st.Name, p.Changelog(st.Name))
		if r := p.Repartition(st); r != "" {
			n += fmt.Sprintf("; its records are repartitioned by %s through %s", st.Impl.(stages.Stateful).StateKey().Written(), r)
		}
		notes = append(notes, n)
	}
	for _, st := range p.Stages {
		if u, ok := stages.TableUserOf(st.Impl); ok {
			notes = append(notes, fmt.Sprintf("stage %s keeps table %s, all its partitions, in a local store under %s (read to its end before records flow)", st.Name, u.TableTopic(), filepath.Join(p.State.Dir, p.Name, st.Name+"-table")))
		}
	}
	return notes
}

// checkState reports what stateful stages cannot run on: a store is an input partition's,
// so without repartitioning the source must read one topic (two topics' partition 0 may go
// to two instances).
func checkState(p *spec.Parser, pl *Pipeline) {
	for _, st := range pl.Stateful() {
		at := st.Fields.Get("type")
		if pl.Repartition(st) != "" {
			continue
		}
		if k := pl.KafkaSource(); k != nil && len(k.Topics) > 1 {
			p.Errorf(at.Pos, at.Path, "a %s stage keeps its state per input partition, so the source must read one topic (it reads %d: partition 0 of each may go to a different instance); use a pipeline per topic", st.Type, len(k.Topics))
		}
	}
}

// readState reads the state block.
func readState(v *spec.Value) State {
	return State{Dir: v.String("dir"), CacheBytes: v.Int("cache")}
}
