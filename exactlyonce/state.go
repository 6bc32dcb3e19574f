package exactlyonce

import (
	"context"
	"slices"
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// stateHooks are the stateful stages' hooks (sources.Intake.State), nil without them: told of
// partitions claimed at once, of partitions revoked only once what of them was in the
// pipeline is out (the next transaction begins), and of each transaction's end.
type stateHooks struct {
	hooks sources.StateHooks
}

// claimed tells the hooks of partitions assigned (in the group's callback).
func (k *Source) claimed(parts map[string][]int32) {
	h := k.hooks.Load()
	if h == nil {
		return
	}
	for topic, ps := range parts {
		for _, p := range ps {
			h.hooks.Claimed(topic, p)
		}
	}
}

// revoked keeps partitions revoked for release: the revoke aborted the open transaction,
// whose records may still be in the stages, using their stores.
func (k *Source) revoked(parts map[string][]int32) {
	if k.hooks.Load() == nil {
		return
	}
	k.partsMu.Lock()
	defer k.partsMu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			k.releasing = append(k.releasing, kafkaio.Partition{Topic: topic, Partition: p})
		}
	}
}

// release tells the hooks of the partitions revoked since last time; called between
// transactions, when no record of an earlier one is in the pipeline.
func (k *Source) release() {
	h := k.hooks.Load()
	if h == nil {
		return
	}
	k.partsMu.Lock()
	parts := k.releasing
	k.releasing = nil
	k.partsMu.Unlock()
	for _, p := range parts {
		h.hooks.Released(p.Topic, p.Partition, false)
	}
}

// ended tells the hooks how a transaction ended: committed, or aborted (unsure: its end was
// not confirmed) with its records out of the pipeline.
func (k *Source) ended(committed, unsure bool) {
	h := k.hooks.Load()
	switch {
	case h == nil:
	case committed:
		h.hooks.Committed()
	default:
		h.hooks.Aborted(unsure)
	}
}

// tickable lists the partitions of the ticked topics the source reads now, when ticks are
// due (every Every at most); nil otherwise.
func (k *Source) tickable(t *sources.Ticks) []kafkaio.Partition {
	if t == nil || time.Since(k.lastTick) < t.Every {
		return nil
	}
	k.lastTick = time.Now()
	k.partsMu.Lock()
	defer k.partsMu.Unlock()
	var out []kafkaio.Partition
	for p := range k.parts {
		if slices.Contains(t.Topics, p.Topic) {
			out = append(out, p)
		}
	}
	return out
}

// ticks hands the pipeline a tick per partition of parts, inside b's transaction: a tick's
// outputs must be in one.
func (k *Source) ticks(ctx context.Context, in sources.Intake, b *Batch, parts []kafkaio.Partition) error {
	recs := make([]*record.Record, len(parts))
	for i, p := range parts {
		recs[i] = &record.Record{Topic: p.Topic, Partition: p.Partition, Offset: -1, Tick: true, Track: record.NewTracker(b, 0)}
	}
	b.Add(len(recs))
	if err := in.Deliver(ctx, recs); err != nil {
		for range recs {
			b.Settle(0)
		}
		return err
	}
	return nil
}
