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
	var described kadm.DescribedGroups
	err := whileCoordinatorMoves(ctx, func() error {
		var err error
		if described, err = a.adm.DescribeGroups(ctx, group); err == nil {
			err = described.Error()
		}
		return err
	})
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
	var committed kadm.OffsetResponses
	err := whileCoordinatorMoves(ctx, func() error {
		var err error
		if committed, err = a.adm.FetchOffsets(ctx, group); err == nil {
			err = committed.Error()
		}
		return err
	})
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

// whileCoordinatorMoves runs ask until the group's coordinator answers, or ctx ends: a
// cluster just started creates __consumer_offsets at the first question, and its
// coordinators say they are not available meanwhile.
func whileCoordinatorMoves(ctx context.Context, ask func() error) error {
	for attempt := 1; ; attempt++ {
		err := ask()
		if !errors.Is(err, kerr.CoordinatorNotAvailable) && !errors.Is(err, kerr.CoordinatorLoadInProgress) && !errors.Is(err, kerr.NotCoordinator) {
			return err
		}
		select {
		case <-time.After(failure.Backoff(attempt, 100*time.Millisecond, 2*time.Second, 2, 0.2)):
		case <-ctx.Done():
			return err
		}
	}
}
