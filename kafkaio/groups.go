package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/pythia-pipe/pythia-pipe/failure"
)

// GroupMembers is how many members group has now.
func (a *Admin) GroupMembers(ctx context.Context, group string) (int, error) {
	described, err := whileCoordinatorMoves(ctx, func() (kadm.DescribedGroups, error) { return a.adm.DescribeGroups(ctx, group) })
	if errors.Is(err, kerr.GroupIDNotFound) { // Kafka 4 says so of a group never used: no member
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("describing group %s: %w", group, err)
	}
	return len(described[group].Members), nil
}

// GroupOffsets are the offsets group has committed, by topic and partition: where its members
// go on reading.
func (a *Admin) GroupOffsets(ctx context.Context, group string) (map[string]map[int32]int64, error) {
	committed, err := whileCoordinatorMoves(ctx, func() (kadm.OffsetResponses, error) { return a.adm.FetchOffsets(ctx, group) })
	if errors.Is(err, kerr.GroupIDNotFound) { // a group never committed (kfake says so; Kafka answers with no offsets)
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the offsets of group %s: %w", group, err)
	}
	out := map[string]map[int32]int64{}
	committed.Each(func(o kadm.OffsetResponse) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out, nil
}

// whileCoordinatorMoves asks until the group's coordinator answers, or ctx ends: a cluster
// just started creates __consumer_offsets at the first question, and its coordinators say
// they are not available meanwhile. The error is the request's or, failing none, the
// answer's.
func whileCoordinatorMoves[A interface{ Error() error }](ctx context.Context, ask func() (A, error)) (A, error) {
	for attempt := 1; ; attempt++ {
		answer, err := ask()
		if err == nil {
			err = answer.Error()
		}
		if !errors.Is(err, kerr.CoordinatorNotAvailable) && !errors.Is(err, kerr.CoordinatorLoadInProgress) && !errors.Is(err, kerr.NotCoordinator) {
			return answer, err
		}
		select {
		case <-time.After(failure.Backoff(attempt, 100*time.Millisecond, 2*time.Second, 2, 0.2)):
		case <-ctx.Done():
			return answer, err
		}
	}
}
