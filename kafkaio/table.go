package kafkaio

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TableTopic reads a table lookup's topic (state.TableTopic): every partition, read_committed,
// from given offsets and on as the topic changes.
type TableTopic struct {
	admin *Admin
	topic string
}

// TableTopic reads topic as a table.
func (a *Admin) TableTopic(topic string) *TableTopic { return &TableTopic{admin: a, topic: topic} }

// Ends are the partitions' last stable offsets: the end of what is committed now.
func (t *TableTopic) Ends(ctx context.Context) (map[int32]int64, error) {
	ends, err := t.admin.stableEnds(ctx, t.topic)
	if err != nil {
		return nil, fmt.Errorf("listing the end of table topic %s: %w", t.topic, err)
	}
	if len(ends) == 0 {
		return nil, fmt.Errorf("table topic %s has no partitions (does it exist?)", t.topic)
	}
	return ends, nil
}

// stableEnds lists the last stable offset of each partition of topic: the end of what is
// committed, read_committed readers' end.
func (a *Admin) stableEnds(ctx context.Context, topic string) (map[int32]int64, error) {
	listed, err := a.adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, err
	}
	ends := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic {
			ends[o.Partition] = o.Offset
		}
	})
	return ends, nil
}

// Follow reads every partition the topic has now from the offsets of from (0 for one not in
// it) and on, until ctx ends, calling apply for each record and transaction marker.
func (t *TableTopic) Follow(ctx context.Context, from map[int32]int64, apply func(partition int32, offset int64, key, value []byte, control bool) error) error {
	ends, err := t.Ends(ctx)
	if err != nil {
		return err
	}
	start := map[int32]int64{}
	for p := range ends {
		start[p] = from[p]
	}
	b := &Backlog{ReadCommitted: true, End: map[string]map[int32]int64{t.topic: ends}}
	r, err := t.admin.Reader(b, Reading{From: map[string]map[int32]int64{t.topic: start}, Follow: true})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		m, err := r.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading table topic %s: %w", t.topic, err)
		}
		if err := apply(m.Partition, m.Offset, m.Key, m.Value, m.Control); err != nil {
			return err
		}
	}
}
