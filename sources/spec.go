// Package sources holds where records come from: the registered source types (kafka, a
// consumer group) and the contract between a source and the engine (contract.go).
package sources

import (
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// kafkaFields are the fields of a source of type kafka.
var kafkaFields = []spec.Field{
	spec.Strings("topics", "Topics to consume: a name or a list.").Require().NotEmpty(),
	spec.String("group", "Consumer group. Default: the pipeline name."),
	spec.Enum("start", "Where a group without committed offsets starts.", "earliest", "latest").WithDefault("earliest"),
	spec.Enum("rebalance", "Partition assignment strategy.", "cooperative-sticky", "sticky", "range", "round-robin").WithDefault("cooperative-sticky"),
	spec.String("instance_id", "Static membership (group.instance.id, KIP-345): a member that comes back with the same id within session_timeout takes its partitions back at once, without a rebalance. One per process, stable across restarts (${HOSTNAME} in a StatefulSet)."),
	spec.Duration("session_timeout", "A member not heard from for this long leaves the group.").WithDefault("45s"),
	spec.Duration("heartbeat_interval", "How often the member tells the group it is alive.").WithDefault("3s"),
	spec.Duration("rebalance_timeout", "Time members have to rejoin during a rebalance.").WithDefault("60s"),
	spec.Size("fetch_min_bytes", "The broker waits for this much data before answering a fetch.").WithDefault("1").AtLeast(1),
	spec.Duration("fetch_max_wait", "Longest the broker waits to fill fetch_min_bytes. A fetch holds its broker's other partitions: one resumed after a pause waits up to this for a fetch of caught-up partitions to end.").WithDefault("50ms"),
	spec.Size("fetch_default_bytes", "Bytes asked for per partition per fetch: what each partition may hold beyond max_pending_bytes when paused.").WithDefault("256KiB").AtLeast(1024).AtMost(1 << 30),
	spec.Size("fetch_max_bytes", "Bytes a fetch response may hold across all its partitions (a partition's first batch comes whatever its size): with max_pending_bytes, what bounds the consumer's memory.").WithDefault("4MiB").AtLeast(1024).AtMost(1 << 30),
	spec.Int("channel_buffer_size", "Records buffered per partition between the fetcher and the pipeline.").WithDefault("256").AtLeast(1),
	spec.Duration("commit_interval", "How often committed positions are sent to Kafka (and always at revoke and shutdown); under delivery: exactly_once, how long a transaction reads, 100ms unless set (as Kafka Streams): the latency it adds.").WithDefault("1s"),
	spec.Int("max_pending", "Records read but not yet committed, per partition, before the partition is paused.").WithDefault("10000").AtLeast(1),
	spec.Size("max_pending_bytes", "Memory of the records read and not yet done, across every partition of the process, before every partition is paused until half of it is free; 0: no bound in bytes. A record weighs its key, value and headers plus 512 bytes for what the engine holds of it. Bounds memory whatever the record size and the number of partitions (plus fetch_max_bytes and what sarama buffers per partition).").WithDefault("8MiB").AtLeast(0),
	spec.Duration("drain_timeout", "On revoke or shutdown, time to let in-flight records finish before committing what is done.").WithDefault("30s"),
	spec.Duration("stall_timeout", "A partition whose commit point has not moved for this long while records are pending is stalled: logged, exported, and /healthz fails. 0: never.").WithDefault("5m"),
	spec.Duration("transaction_timeout", "delivery: exactly_once: the longest a transaction may stay open before the broker aborts it; the engine aborts one still open at 80% of it. Shorter than session_timeout.").WithDefault("30s"),
	spec.Enum("isolation", "read_committed: records of aborted or open transactions are never read; read_uncommitted: every record.", "read_committed", "read_uncommitted").WithDefault("read_committed"),
	kafkaconn.CreateField,
}

// ExactlyOnceCommitInterval is commit_interval's default under delivery: exactly_once: a
// transaction's outputs are seen only once it commits, so how long it reads is latency.
const ExactlyOnceCommitInterval = 100 * time.Millisecond

// Config is the validated Kafka source.
type Config struct {
	Topics             []string
	Group              string
	Start              string
	Rebalance          string
	InstanceID         string
	SessionTimeout     time.Duration
	HeartbeatInterval  time.Duration
	RebalanceTimeout   time.Duration
	FetchMinBytes      int64
	FetchMaxWait       time.Duration
	FetchDefaultBytes  int64
	FetchMaxBytes      int64
	ChannelBufferSize  int
	CommitInterval     time.Duration
	MaxPending         int
	MaxPendingBytes    int64
	DrainTimeout       time.Duration
	StallTimeout       time.Duration
	Isolation          string
	TransactionTimeout time.Duration
	Create             *spec.Value // topic settings of the source topics, for `topics create`
}

// buildKafka checks the combinations the spec cannot express and returns the config.
func buildKafka(p *spec.Parser, v *spec.Value, pipelineName string) Compiled {
	return FromValue(p, v, pipelineName)
}

// FromValue checks the combinations the spec cannot express and returns the config.
func FromValue(p *spec.Parser, v *spec.Value, pipelineName string) *Config {
	c := &Config{
		Topics:             v.Strings("topics"),
		Group:              v.String("group"),
		Start:              v.String("start"),
		Rebalance:          v.String("rebalance"),
		InstanceID:         v.String("instance_id"),
		SessionTimeout:     v.Duration("session_timeout"),
		HeartbeatInterval:  v.Duration("heartbeat_interval"),
		RebalanceTimeout:   v.Duration("rebalance_timeout"),
		FetchMinBytes:      v.Int("fetch_min_bytes"),
		FetchMaxWait:       v.Duration("fetch_max_wait"),
		FetchDefaultBytes:  v.Int("fetch_default_bytes"),
		FetchMaxBytes:      v.Int("fetch_max_bytes"),
		ChannelBufferSize:  int(v.Int("channel_buffer_size")),
		CommitInterval:     v.Duration("commit_interval"),
		MaxPending:         int(v.Int("max_pending")),
		MaxPendingBytes:    v.Int("max_pending_bytes"),
		DrainTimeout:       v.Duration("drain_timeout"),
		StallTimeout:       v.Duration("stall_timeout"),
		Isolation:          v.String("isolation"),
		TransactionTimeout: v.Duration("transaction_timeout"),
		Create:             v.Get("create"),
	}
	if c.Group == "" {
		c.Group = pipelineName
	}
	if hb := v.Get("heartbeat_interval"); c.HeartbeatInterval >= c.SessionTimeout {
		p.Errorf(hb.Pos, hb.Path, "heartbeat_interval (%v) must be shorter than session_timeout (%v); a third of it is usual", c.HeartbeatInterval, c.SessionTimeout)
	}
	if dt := v.Get("drain_timeout"); c.DrainTimeout >= c.RebalanceTimeout {
		p.Errorf(dt.Pos, dt.Path, "drain_timeout (%v) must be shorter than rebalance_timeout (%v), or a rebalance would expel this member while it drains", c.DrainTimeout, c.RebalanceTimeout)
	}
	seen := map[string]bool{}
	for _, t := range v.Get("topics").Items {
		if seen[t.Str] {
			p.Errorf(t.Pos, t.Path, "topic %q is listed twice", t.Str)
		}
		seen[t.Str] = true
		kafkaconn.CheckTopicName(p, t)
	}
	return c
}

var kafkaExamples = []spec.Example{
	{Title: "A group reading two topics from the start, paced and bounded in memory", YAML: `
source:
  type: kafka
  topics: [orders, orders-replayed]
  group: order-processors
  start: earliest
  max_pending: 5000
  max_pending_bytes: 16MiB
  commit_interval: 1s
  instance_id: ${POD_NAME:-local}
  create: {partitions: 6, retention: 168h}
`},
}
