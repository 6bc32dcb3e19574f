package pipeline

import (
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

// Topics lists every topic a pipeline names literally: source topics, sink topics, the DLQ.
func (p *Pipeline) Topics() []string {
	plans := p.TopicPlans()
	out := make([]string, len(plans))
	for i, t := range plans {
		out[i] = t.Name
	}
	return out
}

// TopicPlans lists the topics the pipeline names literally with their `create` settings:
// the source topics, the sink topics and the DLQ's.
func (p *Pipeline) TopicPlans() []kafkaconn.Topic {
	var out []kafkaconn.Topic
	seen := map[string]bool{}
	add := func(t kafkaconn.Topic) {
		if t.Name != "" && !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t)
		}
	}
	for _, t := range p.Source.Impl.TopicPlans() {
		add(t)
	}
	for _, s := range p.SinksAndDLQ() {
		if tw, ok := s.Impl.(sinks.TopicWriter); ok {
			for _, t := range tw.Topics() {
				add(t)
			}
		}
	}
	return out
}

// ComputedTopicPlans lists, for the sinks that compute their topic, the names their
// topic_allow lists with the sink's `create` settings (topics create makes them), and the
// patterns it cannot make, each with its sink.
func (p *Pipeline) ComputedTopicPlans() (plans []kafkaconn.Topic, patterns [][2]string) {
	named := map[string]bool{}
	for _, t := range p.TopicPlans() {
		named[t.Name] = true
	}
	for _, s := range p.Sinks {
		tw, ok := s.Impl.(sinks.TopicWriter)
		if !ok {
			continue
		}
		names, pats := tw.Computed()
		for _, pat := range pats {
			patterns = append(patterns, [2]string{pat, s.Name})
		}
		for _, t := range names {
			if !named[t.Name] {
				named[t.Name] = true
				plans = append(plans, t)
			}
		}
	}
	return plans, patterns
}

// ChangelogPlan is a stateful stage's changelog topic, or its repartition topic, as `topics
// create` makes it.
type ChangelogPlan struct {
	kafkaconn.Topic        // Partitions 0: as many as Source has on the brokers
	Stage           string // the stateful stage
	Source          string // the source topic whose partitions it follows
	What            string // "changelog" or "repartition"
}

// ChangelogPlans lists the changelog topics of the stateful stages (`<group>-<stage>-changelog`),
// and the repartition topics of those keeping state by a computed key (not compacted):
// compacted, with the partitions and replication factor of the source's `create` block; with
// Partitions 0 when the block does not set them, for the changelog then takes as many as the
// source topic has (a store is an input partition's, and writes to the changelog partition of
// the same number).
func (p *Pipeline) ChangelogPlans() []ChangelogPlan {
	stateful := p.Stateful()
	k := p.KafkaSource()
	if len(stateful) == 0 || k == nil || len(k.Topics) == 0 {
		return nil
	}
	var partitions int32
	replication := int16(1)
	if k.Create != nil {
		if k.Create.Has("partitions") {
			partitions = int32(k.Create.Int("partitions"))
		}
		if r := k.Create.Int("replication_factor"); r > 0 {
			replication = int16(r)
		}
	}
	var out []ChangelogPlan
	for _, st := range stateful {
		out = append(out, ChangelogPlan{Stage: st.Name, Source: k.Topics[0], What: "changelog", Topic: kafkaconn.Topic{Name: p.Changelog(st.Name),
			Partitions: partitions, ReplicationFactor: replication, Configs: map[string]string{"cleanup.policy": "compact"}}})
		if r := p.Repartition(st); r != "" {
			out = append(out, ChangelogPlan{Stage: st.Name, Source: k.Topics[0], What: "repartition", Topic: kafkaconn.Topic{Name: r,
				Partitions: partitions, ReplicationFactor: replication, Configs: map[string]string{"cleanup.policy": "delete"}}})
		}
	}
	return out
}

// SinksAndDLQ lists the sinks, then the DLQ when there is one.
func (p *Pipeline) SinksAndDLQ() []*Sink {
	if p.DLQ == nil {
		return p.Sinks
	}
	return append(append([]*Sink(nil), p.Sinks...), p.DLQ)
}
