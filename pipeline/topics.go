package pipeline

import (
	"strings"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/spec"
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
// the source topics, the sink topics and the DLQ.
func (p *Pipeline) TopicPlans() []kafkaconn.Topic {
	var out []kafkaconn.Topic
	seen := map[string]bool{}
	add := func(name string, create *spec.Value) {
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, kafkaconn.TopicFromValue(name, create))
		}
	}
	for _, t := range p.Source.Topics {
		add(t, p.Source.Create)
	}
	for _, s := range p.Sinks {
		add(s.Topic, s.Producer.Create)
	}
	if p.DLQ != nil {
		add(p.DLQ.Topic, p.DLQ.Producer.Create)
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
		for _, a := range s.Allow {
			switch {
			case strings.ContainsAny(a, "*?["):
				patterns = append(patterns, [2]string{a, s.Name})
			case !named[a]:
				named[a] = true
				plans = append(plans, kafkaconn.TopicFromValue(a, s.Producer.Create))
			}
		}
	}
	return plans, patterns
}
