package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

// TopicResult says what EnsureTopics did for one topic.
type TopicResult struct {
	kafkaconn.Topic
	Created bool
	Diffs   []string // how an existing topic differs from the wanted one ("partitions 1, want 3")
}

func (r TopicResult) String() string {
	switch {
	case r.Created:
		return fmt.Sprintf("topic %s: created (%d partitions, replication factor %d%s)", r.Name, r.Partitions, r.ReplicationFactor, configText(r.Configs))
	case len(r.Diffs) > 0:
		return fmt.Sprintf("topic %s: exists, but differs from the file: %s (left as it is)", r.Name, strings.Join(r.Diffs, "; "))
	}
	return fmt.Sprintf("topic %s: exists, as configured", r.Name)
}

func configText(c map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, k+"="+c[k])
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

// EnsureTopics creates the topics that do not exist and compares the others with what is
// wanted; it never changes an existing topic, so running it twice changes nothing.
func (a *Admin) EnsureTopics(ctx context.Context, topics []kafkaconn.Topic) ([]TopicResult, error) {
	if _, err := a.Check(ctx, nil); err != nil {
		return nil, err
	}
	var out []TopicResult
	for _, t := range topics {
		r := TopicResult{Topic: t}
		partitions, replicas, err := a.describe(ctx, t.Name)
		switch {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			if r.Created, err = a.create(ctx, t); err != nil {
				return out, err
			}
		case err != nil:
			return out, fmt.Errorf("describing topic %s: %w", t.Name, err)
		default:
			if r.Diffs, err = a.differences(ctx, t, partitions, replicas); err != nil {
				return out, err
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// describe reads the partitions of topic, and the replicas of each, afresh: a topic created
// or deleted a moment ago is seen as it is now.
func (a *Admin) describe(ctx context.Context, topic string) (partitions, replicas int, err error) {
	resp, err := metadataRequest(topic).RequestWith(ctx, a.cl)
	var t *kmsg.MetadataResponseTopic
	if err == nil {
		t, err = topicIn(resp, topic)
	}
	if err != nil {
		return 0, 0, err
	}
	return len(t.Partitions), len(t.Partitions[0].Replicas), nil
}

// create creates t; created is false when another client created it first.
func (a *Admin) create(ctx context.Context, t kafkaconn.Topic) (created bool, err error) {
	configs := map[string]*string{}
	for k, v := range t.Configs {
		configs[k] = &v
	}
	_, err = a.adm.CreateTopic(ctx, t.Partitions, t.ReplicationFactor, configs, t.Name)
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("creating topic %s: %w", t.Name, err)
	}
	return true, nil
}

// differences says how the existing topic t, of partitions and replicas, differs from what is
// wanted: its partitions, replication factor and the configs the file sets.
func (a *Admin) differences(ctx context.Context, t kafkaconn.Topic, partitions, replicas int) ([]string, error) {
	var diffs []string
	if partitions != int(t.Partitions) {
		diffs = append(diffs, fmt.Sprintf("partitions %d, want %d", partitions, t.Partitions))
	}
	if replicas != int(t.ReplicationFactor) {
		diffs = append(diffs, fmt.Sprintf("replication factor %d, want %d", replicas, t.ReplicationFactor))
	}
	described, err := a.adm.DescribeTopicConfigs(ctx, t.Name)
	var rc kadm.ResourceConfig
	if err == nil {
		rc, err = described.On(t.Name, nil)
	}
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return diffs, fmt.Errorf("describing topic %s: %w", t.Name, err)
	}
	values := map[string]string{}
	for _, c := range rc.Configs {
		values[c.Key] = c.MaybeValue()
	}
	for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
		if values[k] != t.Configs[k] {
			diffs = append(diffs, fmt.Sprintf("%s=%s, want %s", k, values[k], t.Configs[k]))
		}
	}
	return diffs, nil
}
