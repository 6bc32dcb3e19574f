package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

// Changelog reads a stateful stage's changelog topic for its stores (state.Changelog): the
// end of a partition, and its records from one offset to another. It reads read_committed,
// so that under exactly-once an aborted transaction's changes are never restored.
type Changelog struct {
	admin *Admin
	topic string
}

// Changelog reads topic as a changelog.
func (a *Admin) Changelog(topic string) *Changelog { return &Changelog{admin: a, topic: topic} }

// End is the partition's last stable offset: the end of what is committed.
func (c *Changelog) End(ctx context.Context, partition int32) (int64, error) {
	ends, err := c.admin.stableEnds(ctx, c.topic)
	if err != nil {
		return 0, fmt.Errorf("listing the end of changelog %s: %w", c.topic, err)
	}
	end, ok := ends[partition]
	if !ok {
		return 0, fmt.Errorf("changelog %s has no partition %d (it needs as many as the source's topic: was it made with fewer?)", c.topic, partition)
	}
	return end, nil
}

// LogEnd is the partition's high watermark: the offset after its last record, committed or
// not (state.LogEnder: beyond End while a transaction is open in it).
func (c *Changelog) LogEnd(ctx context.Context, partition int32) (int64, error) {
	listed, err := c.admin.adm.ListEndOffsets(ctx, c.topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("listing the log end of changelog %s: %w", c.topic, err)
	}
	o, ok := listed.Lookup(c.topic, partition)
	if !ok {
		return 0, fmt.Errorf("changelog %s has no partition %d (it needs as many as the source's topic: was it made with fewer?)", c.topic, partition)
	}
	return o.Offset, nil
}

// changelogFetch bounds a restore's fetches: a changelog's records are a few dozen bytes, and
// a fetch of franz-go's default 1 MiB of them held 19 MB of records decoded (with 10M keys, a
// fifth of the restoring process's live heap).
const changelogFetch = 256 << 10

// Read calls apply for each record of partition from offset from up to to, in order.
func (c *Changelog) Read(ctx context.Context, partition int32, from, to int64, apply func(key, value []byte) error) error {
	b := &Backlog{ReadCommitted: true, End: map[string]map[int32]int64{c.topic: {partition: to}}}
	r, err := c.admin.Reader(b, Reading{From: map[string]map[int32]int64{c.topic: {partition: from}}, FetchBytes: changelogFetch})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading changelog %s partition %d: %w", c.topic, partition, err)
		}
		if m.Control {
			continue
		}
		if err := apply(m.Key, m.Value); err != nil {
			return err
		}
	}
}

// EnsureInternal makes a stateful stage's topic (a compacted changelog, or a repartition
// topic) of partitions partitions when it does not exist (the brokers' default replication;
// created says so), and checks that one that exists has at least as many: a store per input
// partition writes to the partition of the same number.
func (a *Admin) EnsureInternal(ctx context.Context, topic string, partitions int32, compact bool) (created bool, err error) {
	have, _, err := a.describe(ctx, topic)
	policy := "delete"
	if compact {
		policy = "compact"
	}
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		created, err := a.create(ctx, kafkaconn.Topic{Name: topic, Partitions: partitions, ReplicationFactor: -1,
			Configs: map[string]string{"cleanup.policy": policy}})
		if err == nil {
			err = a.awaitOffsets(ctx, topic, partitions)
		}
		return created, err
	case err != nil:
		return false, fmt.Errorf("describing %s: %w", topic, err)
	case int32(have) < partitions:
		return false, fmt.Errorf("%s has %d partitions, fewer than the %d of the source's topic: add partitions to it (a changelog may also be deleted: it is made again, and the stores start from nothing)", topic, have, partitions)
	}
	return false, nil
}

// awaitOffsets waits, a few seconds at most, until the brokers list the offsets of every
// partition of a topic just created: until then, reading it fails.
func (a *Admin) awaitOffsets(ctx context.Context, topic string, partitions int32) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		a.cl.ForceMetadataRefresh() // a client's metadata is otherwise kept 5 s: the topic would look missing
		if ends, err := a.stableEnds(ctx, topic); err == nil && int32(len(ends)) >= partitions {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s was created, but its partitions are not listed yet: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
