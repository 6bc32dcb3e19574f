package realkafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// What the cluster says of itself, asked over the INTERNAL listeners of every running broker
// at once (a killed or paused one is not asked; one that does not answer within 2 s is left
// out), never from a cache: kadm's Metadata answers from franz-go's metadata cache, and from
// whichever broker, a hung one included. A broker's answer is its copy of the controller's
// metadata, which a broker just continued after a pause has not caught up with yet: it still
// tells what was true when it stopped. So an answer counts only once every broker that
// answers gives it.

// askTimeout bounds one broker's answer: a broker hung unbeknown to the harness (its
// session not yet expired) must not hold a question up.
const askTimeout = 2 * time.Second

// askAll sends a request (mk makes one per broker) to every running broker at once and
// returns the answers of those that answered, by broker index; an error when none did.
func (c *Cluster) askAll(ctx context.Context, mk func() kmsg.Request) (map[int]kmsg.Response, error) {
	var (
		mu      sync.Mutex
		answers = map[int]kmsg.Response{}
		errs    []error
		wg      sync.WaitGroup
	)
	for i, n := range c.brokers {
		if !n.Running() {
			continue
		}
		wg.Go(func() {
			actx, cancel := context.WithTimeout(ctx, askTimeout)
			defer cancel()
			resp, err := c.admins[i].SeedBrokers()[0].Request(actx, mk())
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("broker %d: %w", i, err))
			} else {
				answers[i] = resp
			}
		})
	}
	wg.Wait()
	if len(answers) == 0 {
		if len(errs) == 0 {
			return nil, errors.New("no broker is running")
		}
		return nil, fmt.Errorf("no broker answered: %w", errors.Join(errs...))
	}
	return answers, nil
}

// agreed asks every running broker until all that answer read the same value from their
// answers, or ctx ends. A read failing with a retriable error (a topic not yet known to a
// broker, a coordinator still loading) asks again; another error is returned.
func agreed[T comparable](ctx context.Context, c *Cluster, mk func() kmsg.Request, read func(kmsg.Response) (T, error)) (T, error) {
	var zero T
	for {
		answers, err := c.askAll(ctx, mk)
		var values []T
		for _, resp := range answers {
			v, rerr := read(resp)
			if rerr != nil && !kerr.IsRetriable(rerr) {
				return zero, rerr
			}
			if err = rerr; err != nil {
				break
			}
			values = append(values, v)
		}
		if err == nil {
			if len(values) > 0 && !slices.ContainsFunc(values, func(v T) bool { return v != values[0] }) {
				return values[0], nil
			}
			err = fmt.Errorf("the brokers disagree: %v", values)
		}
		select {
		case <-ctx.Done():
			return zero, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// metadataRequest asks for the metadata of topics: nil is every topic, empty none (the
// brokers alone).
func metadataRequest(topics []string) func() kmsg.Request {
	return func() kmsg.Request {
		req := kmsg.NewPtrMetadataRequest()
		if topics != nil {
			req.Topics = []kmsg.MetadataRequestTopic{}
		}
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
		return req
	}
}

// listed reports whether every running broker that answers lists broker i in its metadata:
// registered, caught up, not fenced.
func (c *Cluster) listed(i int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), askTimeout)
	defer cancel()
	answers, err := c.askAll(ctx, metadataRequest([]string{}))
	if err != nil {
		return false
	}
	for _, resp := range answers {
		if !slices.ContainsFunc(resp.(*kmsg.MetadataResponse).Brokers, func(b kmsg.MetadataResponseBroker) bool { return int(b.NodeID) == i }) {
			return false
		}
	}
	return true
}

// Leader returns the index of the broker leading a partition, or -1 while it has none, once
// every running broker says so (until ctx ends).
func (c *Cluster) Leader(ctx context.Context, topic string, partition int32) (int, error) {
	return agreed(ctx, c, metadataRequest([]string{topic}), func(resp kmsg.Response) (int, error) {
		for _, t := range resp.(*kmsg.MetadataResponse).Topics {
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				return -1, fmt.Errorf("topic %s: %w", topic, err)
			}
			for _, p := range t.Partitions {
				if p.Partition == partition {
					return int(p.Leader), nil
				}
			}
		}
		return -1, fmt.Errorf("topic %s, partition %d: %w", topic, partition, kerr.UnknownTopicOrPartition)
	})
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
	mk := func() kmsg.Request {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKey, req.CoordinatorKeys = kind, key, []string{key}
		return req
	}
	node, err := agreed(ctx, c, mk, func(resp kmsg.Response) (int, error) {
		r := resp.(*kmsg.FindCoordinatorResponse)
		node, code := r.NodeID, r.ErrorCode
		if len(r.Coordinators) > 0 { // v4 and later
			node, code = r.Coordinators[0].NodeID, r.Coordinators[0].ErrorCode
		}
		return int(node), kerr.ErrorForCode(code)
	})
	if err != nil {
		return -1, fmt.Errorf("finding the coordinator of %s: %w", key, err)
	}
	return node, nil
}

// WaitInSync waits (until ctx ends) until every running broker says that all the brokers
// are in the metadata and every partition of every topic, the internal ones included, has
// a leader and its whole replica set in sync: what a rolling restart waits for before
// taking the next broker down.
func (c *Cluster) WaitInSync(ctx context.Context) error {
	for {
		lagging, err := c.outOfSync(ctx)
		if err == nil && len(lagging) == 0 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("out of sync: %s", strings.Join(lagging, "; "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the replicas to be in sync: %w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// outOfSync lists what some running broker says is not in sync now: brokers missing from
// its metadata, partitions without a leader or with replicas outside their ISR.
func (c *Cluster) outOfSync(ctx context.Context) ([]string, error) {
	answers, err := c.askAll(ctx, metadataRequest(nil))
	if err != nil {
		return nil, err
	}
	var lagging []string
	for i, resp := range answers {
		m := resp.(*kmsg.MetadataResponse)
		if len(m.Brokers) != len(c.brokers) {
			lagging = append(lagging, fmt.Sprintf("broker %d: %d of %d brokers in the metadata", i, len(m.Brokers), len(c.brokers)))
		}
		for _, t := range m.Topics {
			name := ""
			if t.Topic != nil {
				name = *t.Topic
			}
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				lagging = append(lagging, fmt.Sprintf("broker %d: %s: %v", i, name, err))
				continue
			}
			for _, p := range t.Partitions {
				isr, replicas := slices.Sorted(slices.Values(p.ISR)), slices.Sorted(slices.Values(p.Replicas))
				if p.Leader < 0 || !slices.Equal(isr, replicas) {
					lagging = append(lagging, fmt.Sprintf("broker %d: %s-%d leader %d replicas %v isr %v", i, name, p.Partition, p.Leader, replicas, isr))
				}
			}
		}
	}
	return lagging, nil
}
