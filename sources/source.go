package sources

import (
	"maps"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// Type describes one source type: its spec and how to build it, as sinks.Type does for sinks.
type Type struct {
	Name   string
	Doc    string
	Fields []spec.Field // its own fields, beside `type`
	// Build checks what the spec cannot say alone; it reports problems through p and never
	// panics on input. pipelineName is the default consumer group.
	Build func(p *spec.Parser, v *spec.Value, pipelineName string) Compiled
	// Examples are printed on the type's reference page; each validates.
	Examples []spec.Example
}

// Registry lists every source type by name.
func Registry() map[string]*Type {
	return map[string]*Type{
		"kafka": {Name: "kafka", Doc: "A Kafka consumer group: records are committed once they cleared every stage.", Fields: kafkaFields, Build: buildKafka, Examples: kafkaExamples},
	}
}

// TypeNames lists the registered source types, sorted.
func TypeNames() []string { return slices.Sorted(maps.Keys(Registry())) }

// commonFields are the fields every source has, besides those of its type.
var commonFields = []spec.Field{
	spec.String("type", "The source type: "+strings.Join(TypeNames(), " or ")+".").Require(),
}

// Field is the `source` block of a pipeline file; its type picks its fields.
var Field = spec.Raw("source", "Where records come from: "+strings.Join(TypeNames(), " or ")+" (see Sources).")

// Compiled is a validated source.
type Compiled interface {
	// Label says in a graph where records come from: "kafka: orders".
	Label() string
	// TopicPlans lists the topics it reads, with their `create` settings.
	TopicPlans() []kafkaconn.Topic
	// Drain is how long a stop lets what is in flight finish before committing.
	Drain() time.Duration
}

// Runner is an open source: it runs (Source) and says how it is doing.
type Runner interface {
	Source
	Stats() Stats
}

// Parse reads the `source` block: its `type` picks the fields, and the type builds it. An
// unknown type is reported with a suggestion and yields a nil Compiled.
func Parse(p *spec.Parser, n *yaml.Node, path string, at diag.Pos, pipelineName string) (*spec.Value, Compiled) {
	typ := Registry()[p.TypeOf(n, path, "source", TypeNames())]
	if r := spec.Resolve(n); typ == nil && r != nil && r.Kind != yaml.MappingNode && len(Registry()) == 1 {
		typ = Registry()[TypeNames()[0]] // not a mapping: say which fields the only type takes
	}
	if typ == nil {
		return p.ParseObject(spec.KnownOnly(n, commonFields), commonFields, path, at), nil
	}
	v := p.ParseObject(n, append(append([]spec.Field(nil), commonFields...), typ.Fields...), path, at)
	return v, typ.Build(p, v, pipelineName)
}

// Label is the topics the group reads.
func (c *Config) Label() string { return "kafka: " + strings.Join(c.Topics, ", ") }

// TopicPlans lists the topics the group reads with their `create` settings.
func (c *Config) TopicPlans() []kafkaconn.Topic {
	out := make([]kafkaconn.Topic, len(c.Topics))
	for i, t := range c.Topics {
		out[i] = kafkaconn.TopicFromValue(t, c.Create)
	}
	return out
}

// Drain is drain_timeout.
func (c *Config) Drain() time.Duration { return c.DrainTimeout }

// GroupConfig is the consumer group member the source is, for kafkaio.
func (c *Config) GroupConfig() kafkaio.GroupConfig {
	return kafkaio.GroupConfig{Group: c.Group, InstanceID: c.InstanceID, Topics: c.Topics, Balancer: c.Rebalance,
		SessionTimeout: c.SessionTimeout, HeartbeatInterval: c.HeartbeatInterval, RebalanceTimeout: c.RebalanceTimeout,
		StartAtEnd: c.Start == "latest", ReadCommitted: c.Isolation != "read_uncommitted",
		FetchMinBytes: int32(c.FetchMinBytes), FetchMaxBytes: int32(c.FetchMaxBytes), FetchPartitionBytes: int32(c.FetchDefaultBytes),
		FetchMaxWait: c.FetchMaxWait, Buffer: c.ChannelBufferSize}
}
