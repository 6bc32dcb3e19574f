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

// SinksAndDLQ lists the sinks, then the DLQ when there is one.
func (p *Pipeline) SinksAndDLQ() []*Sink {
	if p.DLQ == nil {
		return p.Sinks
	}
	return append(append([]*Sink(nil), p.Sinks...), p.DLQ)
}
