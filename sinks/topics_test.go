package sinks

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

var _ Partitioned = (*kafkaio.Admin)(nil) // what the sinks are to be given

// lookups is a Partitioned that counts what it is asked.
type lookups struct {
	counts map[string]int32
	down   bool // brokers away
	asked  map[string]int
}

func (l *lookups) Partitions(_ context.Context, topic string) (int32, error) {
	l.asked[topic]++
	n, ok := l.counts[topic]
	switch {
	case l.down:
		return 0, fmt.Errorf("looking up topic %s: %w", topic, kerr.RequestTimedOut)
	case !ok:
		return 0, fmt.Errorf("looking up topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	}
	return n, nil
}

// A computed topic: its partition count when the record may go there; a TopicError (the
// record's fault) when it may not, a missing topic remembered for missingFor; another error
// when it cannot be looked up now.
func TestTopicChecker(t *testing.T) {
	cases := []struct {
		name     string
		topic    string
		down     bool
		want     int32
		topicErr bool
		lookedUp int // times the lookup is asked over the two calls
	}{
		{"an allowed topic", "orders-eu", false, 3, false, 2},
		{"not in topic_allow", "payments", false, 0, true, 0},
		{"not a topic name", "orders/eu", false, 0, true, 0},
		{"missing, and remembered", "orders-mars", false, 0, true, 1},
		{"brokers away: not the record's fault", "orders-eu", true, 0, false, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := &lookups{counts: map[string]int32{"orders-eu": 3}, down: c.down, asked: map[string]int{}}
			tc := newTopicChecker(l, []string{"orders-*"})
			for range 2 {
				n, err := tc.partitions(context.Background(), c.topic)
				var te *TopicError
				if n != c.want || errors.As(err, &te) != c.topicErr || (err == nil) != (c.want > 0) {
					t.Fatalf("got %d, %v; want %d (a TopicError: %v)", n, err, c.want, c.topicErr)
				}
			}
			if l.asked[c.topic] != c.lookedUp {
				t.Errorf("looked up %d times, want %d", l.asked[c.topic], c.lookedUp)
			}
		})
	}
}
