package devbroker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// realAdmin is a real Kafka's devkit.Admin: its answers to kadm's requests. Topics get the
// brokers' default replication factor: 1 on the single broker, 3 on the cluster.
type realAdmin struct{ b *Broker }

func (a realAdmin) CreateTopic(topic string, partitions int32, configs map[string]string) error {
	ctx, cancel := adminCtx()
	defer cancel()
	var cfg map[string]*string
	for k, v := range configs {
		if cfg == nil {
			cfg = map[string]*string{}
		}
		cfg[k] = &v
	}
	resp, err := a.b.admin.CreateTopic(ctx, partitions, -1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	// Wait until the topic's partitions have leaders: a client that asks sooner may not see it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if len(a.EndOffsets(topic)) == int(partitions) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s was created but did not show all %d partitions within 30s", topic, partitions)
		}
	}
}

func (a realAdmin) StartOffsets(topic string) map[int32]int64 {
	return a.offsets(topic, a.b.admin.ListStartOffsets)
}

func (a realAdmin) EndOffsets(topic string) map[int32]int64 {
	return a.offsets(topic, a.b.admin.ListEndOffsets)
}

// StableOffsets are what kadm calls committed offsets: the end a read_committed reader sees.
func (a realAdmin) StableOffsets(topic string) map[int32]int64 {
	return a.offsets(topic, a.b.admin.ListCommittedOffsets)
}

// offsets lists topic's offsets with list, asking again until every partition answered
// (a partition whose leader just moved answers NOT_LEADER_OR_FOLLOWER until the client's
// metadata catches up): a map missing a partition would have its reader skip it, which reads
// as records lost, and Unfinished count it as done. A topic that does not exist (no partition
// answers but UNKNOWN_TOPIC_OR_PARTITION) has none; past the admin deadline it returns what
// it has.
func (a realAdmin) offsets(topic string, list func(context.Context, ...string) (kadm.ListedOffsets, error)) map[int32]int64 {
	ctx, cancel := adminCtx()
	defer cancel()
	for attempt := 1; ; attempt++ {
		out, complete, unknown := map[int32]int64{}, true, false
		listed, err := list(ctx, topic)
		listed.Each(func(o kadm.ListedOffset) {
			switch {
			case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
				unknown, complete = true, false
			case o.Err != nil:
				complete = false
			default:
				out[o.Partition] = o.Offset
			}
		})
		if err == nil && complete || unknown && len(out) == 0 {
			return out
		}
		select {
		case <-ctx.Done():
			return out
		case <-time.After(time.Duration(min(attempt, 10)) * 50 * time.Millisecond):
		}
	}
}

func (a realAdmin) Committed(group, topic string) map[int32]int64 {
	out := map[int32]int64{}
	ctx, cancel := adminCtx()
	defer cancel()
	resp, err := a.b.admin.FetchOffsets(ctx, group)
	if err != nil {
		return out
	}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}
