package realkafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// What the cluster says of itself, asked over the INTERNAL listeners. Each question goes to
// one running broker after another (a killed or paused one is skipped; a broker that does
// not answer within 2 s is passed over) and is never answered from a cache: kadm's Metadata
// answers from franz-go's metadata cache, and from whichever broker, a hung one included.
// A broker's answer is its copy of the controller's metadata, current within milliseconds.

// askTimeout bounds one broker's answer: a broker hung unbeknown to the harness (its
// session not yet expired) must not hold a question up.
const askTimeout = 2 * time.Second

// ask sends req to the running brokers in turn until one answers.
func (c *Cluster) ask(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	var errs []error
	for i, n := range c.brokers {
		if !n.Running() {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, askTimeout)
		resp, err := c.admins[i].SeedBrokers()[0].Request(actx, req)
		cancel()
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("broker %d: %w", i, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, errors.New("no broker is running")
	}
	return nil, errors.Join(errs...)
}

// metadata asks for the metadata of topics: nil is every topic, empty none (the brokers).
func (c *Cluster) metadata(ctx context.Context, topics []string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := c.ask(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// listed reports whether broker i is in the metadata: registered and not fenced.
func (c *Cluster) listed(i int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), askTimeout)
	defer cancel()
	m, err := c.metadata(ctx, []string{})
	if err != nil {
		return false
	}
	return slices.ContainsFunc(m.Brokers, func(b kmsg.MetadataResponseBroker) bool { return int(b.NodeID) == i })
}

// Leader returns the index of the broker leading a partition, or -1 while it has none.
func (c *Cluster) Leader(ctx context.Context, topic string, partition int32) (int, error) {
	m, err := c.metadata(ctx, []string{topic})
	if err != nil {
		return -1, err
	}
	for _, t := range m.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return -1, fmt.Errorf("topic %s: %w", topic, err)
		}
		for _, p := range t.Partitions {
			if p.Partition == partition {
				return int(p.Leader), nil
			}
		}
	}
	return -1, fmt.Errorf("topic %s has no partition %d", topic, partition)
}

// GroupCoordinator returns the index of the broker coordinating a consumer group: the
// leader of its partition of __consumer_offsets. The first question creates that topic;
// until it has a leader, and while the coordinator moves, it asks again (until ctx ends).
func (c *Cluster) GroupCoordinator(ctx context.Context, group string) (int, error) {
	return c.coordinator(ctx, 0, group)
}

// TxnCoordinator returns the index of the broker coordinating a transactional id: the
// leader of its partition of __transaction_state, asked again as GroupCoordinator is.
func (c *Cluster) TxnCoordinator(ctx context.Context, transactionalID string) (int, error) {
	return c.coordinator(ctx, 1, transactionalID)
}

func (c *Cluster) coordinator(ctx context.Context, kind int8, key string) (int, error) {
	for {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKey, req.CoordinatorKeys = kind, key, []string{key}
		resp, err := c.ask(ctx, req)
		if err == nil {
			r := resp.(*kmsg.FindCoordinatorResponse)
			node, code := r.NodeID, r.ErrorCode
			if len(r.Coordinators) > 0 { // v4 and later
				node, code = r.Coordinators[0].NodeID, r.Coordinators[0].ErrorCode
			}
			if err = kerr.ErrorForCode(code); err == nil {
				return int(node), nil
			}
			if !kerr.IsRetriable(err) {
				return -1, fmt.Errorf("finding the coordinator of %s: %w", key, err)
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("finding the coordinator of %s: %w (last: %v)", key, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitInSync waits (until ctx ends) until every broker is in the metadata and every
// partition of every topic, the internal ones included, has a leader and its whole replica
// set in sync: what a rolling restart waits for before taking the next broker down.
func (c *Cluster) WaitInSync(ctx context.Context) error {
	for {
		lagging, err := c.outOfSync(ctx)
		if err == nil && len(lagging) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("out of sync: %s", strings.Join(lagging, "; "))
			}
			return fmt.Errorf("waiting for the replicas to be in sync: %w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// outOfSync lists what is not in sync now: brokers missing from the metadata, partitions
// without a leader or with replicas outside their ISR.
func (c *Cluster) outOfSync(ctx context.Context) ([]string, error) {
	m, err := c.metadata(ctx, nil)
	if err != nil {
		return nil, err
	}
	var lagging []string
	if len(m.Brokers) != len(c.brokers) {
		lagging = append(lagging, fmt.Sprintf("%d of %d brokers in the metadata", len(m.Brokers), len(c.brokers)))
	}
	for _, t := range m.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			lagging = append(lagging, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		for _, p := range t.Partitions {
			isr, replicas := slices.Sorted(slices.Values(p.ISR)), slices.Sorted(slices.Values(p.Replicas))
			if p.Leader < 0 || !slices.Equal(isr, replicas) {
				lagging = append(lagging, fmt.Sprintf("%s-%d leader %d replicas %v isr %v", name, p.Partition, p.Leader, replicas, isr))
			}
		}
	}
	return lagging, nil
}
