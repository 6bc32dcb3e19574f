package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// Every rebalance a member takes part in is counted (rebalances_total), with the eager
// strategies, where it ends the session, and with cooperative-sticky, where it does not.
func TestRebalancesCounted(t *testing.T) {
	for _, strategy := range []string{"cooperative-sticky", "range"} {
		t.Run(strategy, func(t *testing.T) {
			b := startBroker(t, 4, "events")
			p := mustParse(t, fmt.Sprintf(`version: 1
name: members
kafka: {brokers: %s}
source: {type: kafka, topics: [events], rebalance: %s, commit_interval: 50ms,
         session_timeout: 6s, heartbeat_interval: 200ms, rebalance_timeout: 10s, drain_timeout: 5s}
sinks: [{name: o, type: kafka, topic: out}]
`, strings.Join(b.Addrs(), ","), strategy))
			member := func() (*sources.Kafka, func()) {
				src := newSource(t, p, quiet)
				ctx, stop := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() {
					done <- src.Run(ctx, func(context.Context, []*record.Record) error { return nil })
				}()
				return src, func() {
					stop()
					if err := <-done; err != nil {
						t.Error(err)
					}
				}
			}
			a, stopA := member()
			defer stopA()
			waitFor(t, 30*time.Second, "a to own the 4 partitions", func() bool { return a.Stats().Assigned == 4 })
			if n := a.Stats().Rebalances; n != 0 {
				t.Fatalf("%d rebalances counted for the first join", n)
			}
			bb, stopB := member()
			waitFor(t, 30*time.Second, "a and b to share the partitions", func() bool {
				return a.Stats().Assigned == 2 && bb.Stats().Assigned == 2
			})
			waitFor(t, 10*time.Second, "a to count the rebalance b caused", func() bool { return a.Stats().Rebalances >= 1 })
			before := a.Stats().Rebalances
			stopB()
			waitFor(t, 30*time.Second, "a to own the 4 partitions again", func() bool { return a.Stats().Assigned == 4 })
			waitFor(t, 10*time.Second, "a to count the rebalance of b leaving", func() bool { return a.Stats().Rebalances > before })
		})
	}
}
