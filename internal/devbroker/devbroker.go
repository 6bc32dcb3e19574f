// Package devbroker is the tests' Kafka: devkit's in-process broker, or a real Apache Kafka
// started by internal/realkafka and attached to devkit (so that creating, feeding and reading
// topics, and a group's offsets, are the same code for both), with what only tests need: a
// transaction committed or aborted, group members, offsets committed or deleted, topic
// configs changed, the orders example's feed and DLQ.
package devbroker

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/devkit"
	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
)

// Broker is a running cluster listening on 127.0.0.1: in-process (Cluster is set), a real
// Apache Kafka (Real is set), or a real cluster of several brokers (RealCluster is set; not
// named Cluster, which is devkit's in-process one and many tests' fault injection).
type Broker struct {
	*devkit.Broker
	Real        *realkafka.Broker
	RealCluster *realkafka.Cluster
	admin       *kadm.Client
	client      *kgo.Client
}

// Record is what Produce writes and Read returns.
type Record = devkit.Record

// Start starts an in-process cluster of one broker, or of n with kfake.NumBrokers.
func Start(opts ...kfake.Opt) (*Broker, error) {
	kit, err := devkit.Start(opts...)
	if err != nil {
		return nil, err
	}
	b := &Broker{Broker: kit}
	if err := b.connect(b.Addrs()); err != nil {
		return nil, err
	}
	return b, nil
}

// StartReal starts a real Apache Kafka broker; its PLAINTEXT listener is Addrs.
func StartReal(o realkafka.Options) (*Broker, error) {
	r, err := realkafka.Start(o)
	if err != nil {
		return nil, err
	}
	b := &Broker{Real: r}
	b.Broker = devkit.Attach([]string{r.Addr("plaintext")}, realAdmin{b})
	if err := b.connect(b.Addrs()); err != nil {
		return nil, err
	}
	return b, nil
}

// StartCluster starts a real Apache Kafka cluster (realkafka.StartCluster: a controller and
// three brokers, replication factor 3, min.insync.replicas 2); topics are created with the
// cluster's replication factor. The harness's own clients — Addrs, Client, Produce, Read and
// the admin's requests — go over the brokers' INTERNAL listeners, around any fault proxy
// o.Advertise put in front of them, so that a test's feed and checks hold while it injects
// network faults; RealCluster.Addrs() are the brokers as the client under test reaches them.
func StartCluster(o realkafka.ClusterOptions) (*Broker, error) {
	c, err := realkafka.StartCluster(o)
	if err != nil {
		return nil, err
	}
	b := &Broker{RealCluster: c}
	b.Broker = devkit.Attach(c.DirectAddrs(), realAdmin{b})
	if err := b.connect(c.DirectAddrs()); err != nil {
		return nil, err
	}
	return b, nil
}

// connect makes the admin client on addrs, which a real broker's Admin and the tests'
// helpers use.
func (b *Broker) connect(addrs []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		b.Close()
		return err
	}
	b.client, b.admin = cl, kadm.NewClient(cl)
	return nil
}

// Close stops the cluster (a real broker with SIGTERM, a real cluster with SIGKILL) and
// removes a real one's data.
func (b *Broker) Close() {
	if b.client != nil {
		b.client.Close()
	}
	b.Broker.Close()
	if b.Real != nil {
		b.Real.Stop()
		os.RemoveAll(b.Real.Dir)
	}
	if b.RealCluster != nil {
		b.RealCluster.Close()
	}
}

func adminCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// Stable reports whether no transaction is open in topic: each partition's last stable
// offset is its end. A transaction that ended may still be writing its markers for a moment:
// Read reads to the last stable offset, so a test that needs what a transaction wrote waits
// for Stable first.
func (b *Broker) Stable(topic string) bool {
	ends, stable := b.EndOffsets(topic), b.StableOffsets(topic)
	if len(ends) == 0 || len(stable) != len(ends) {
		return false
	}
	for p, end := range ends {
		if stable[p] != end {
			return false
		}
	}
	return true
}

// Members returns, for each member of group, how many partitions it is assigned.
func (b *Broker) Members(group string) []int {
	var out []int
	if b.Cluster != nil {
		if gi := b.Cluster.GroupInfo(group); gi != nil {
			for _, m := range gi.Members {
				out = append(out, m.NumAssigned())
			}
		}
		return out
	}
	ctx, cancel := adminCtx()
	defer cancel()
	described, err := b.admin.DescribeGroups(ctx, group)
	if err != nil {
		return nil
	}
	for _, m := range described[group].Members {
		n := 0
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				n += len(t.Partitions)
			}
		}
		out = append(out, n)
	}
	return out
}

// Commit commits offsets for group, as a group with no member running would.
func (b *Broker) Commit(group, topic string, offsets map[int32]int64) error {
	ctx, cancel := adminCtx()
	defer cancel()
	var o kadm.Offsets
	for p, at := range offsets {
		o.AddOffset(topic, p, at, -1)
	}
	resp, err := b.admin.CommitOffsets(ctx, group, o)
	if err != nil {
		return err
	}
	return resp.Error()
}

// DeleteRecords deletes the records of topic's partition before offset, as retention would.
func (b *Broker) DeleteRecords(topic string, partition int32, before int64) error {
	ctx, cancel := adminCtx()
	defer cancel()
	var o kadm.Offsets
	o.AddOffset(topic, partition, before, -1)
	resp, err := b.admin.DeleteRecords(ctx, o)
	if err != nil {
		return err
	}
	return resp.Error()
}

// TopicConfig returns the value of a topic config as the broker reports it.
func (b *Broker) TopicConfig(topic, key string) string {
	ctx, cancel := adminCtx()
	defer cancel()
	rcs, err := b.admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return ""
	}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == key && c.Value != nil {
				return *c.Value
			}
		}
	}
	return ""
}

// SetTopicConfig sets a config of topic (max.message.bytes, ...), as an operator would while
// pipelines run.
func (b *Broker) SetTopicConfig(topic, key, value string) error {
	ctx, cancel := adminCtx()
	defer cancel()
	resp, err := b.admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		return fmt.Errorf("setting %s=%s on %s: %w", key, value, topic, err)
	}
	return nil
}
