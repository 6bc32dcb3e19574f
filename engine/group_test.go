package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/atleastonce"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
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
			member := func() (*atleastonce.Source, func()) {
				src := newSource(t, p, quiet)
				ctx, stop := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() {
					done <- src.Run(ctx, settling(t, ctx, 0))
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

// settling is a pipeline for a source alone: it settles every record it is handed, one every
// per (at once when per is 0), until ctx ends.
func settling(t *testing.T, ctx context.Context, per time.Duration) sources.Intake {
	in := make(chan []*record.Record, 4)
	var queue []*record.Record
	var tick <-chan time.Time
	if per > 0 {
		ticker := time.NewTicker(per)
		t.Cleanup(ticker.Stop)
		tick = ticker.C
	}
	go func() { // ends with ctx
		for {
			select {
			case b := <-in:
				if per == 0 {
					for _, r := range b {
						r.Track.Done()
					}
					continue
				}
				queue = append(queue, b...)
			case <-tick:
				if len(queue) > 0 {
					queue[0].Track.Done()
					queue = queue[1:]
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return sources.Intake{C: in, Stopped: ctx.Done()}
}

// A partition revoked while its claim waits (paused at max_pending behind a slow pipeline) is
// drained and committed within the rebalance timeout: the wait ends at the revoke. Before,
// the claim waited on the session alone, sarama gave up after rebalance_timeout and ended the
// member's whole session.
func TestRevokeWhilePaused(t *testing.T) {
	b := startBroker(t, 4, "events")
	recs := make([]devbroker.Record, 4000)
	for i := range recs {
		recs[i] = devbroker.Record{Key: []byte(fmt.Sprint(i % 40)), Value: []byte(fmt.Sprint(i))}
	}
	if err := b.Produce(context.Background(), "events", recs); err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, fmt.Sprintf(`version: 1
name: revoke
kafka: {brokers: %s}
source: {type: kafka, topics: [events], max_pending: 20, commit_interval: 50ms,
         session_timeout: 10s, heartbeat_interval: 200ms, rebalance_timeout: 4s, drain_timeout: 1s}
sinks: [{name: o, type: kafka, topic: out}]
`, strings.Join(b.Addrs(), ",")))
	var logA testproc.Buffer
	a := newSource(t, p, slog.New(slog.NewJSONHandler(&logA, nil)))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctx, settling(t, ctx, 20*time.Millisecond)) }()
	waitFor(t, 30*time.Second, "a to own the 4 partitions and hold max_pending in each", func() bool {
		s := a.Stats()
		if s.Assigned != 4 {
			return false
		}
		for _, ps := range s.Partitions {
			if ps.Pending < 10 {
				return false
			}
		}
		return true
	})
	bb := newSource(t, p, quiet)
	doneB := make(chan error, 1)
	go func() { doneB <- bb.Run(ctx, settling(t, ctx, 0)) }()
	waitFor(t, 30*time.Second, "b to take two partitions", func() bool { return bb.Stats().Assigned == 2 && a.Stats().Assigned == 2 })
	out := logA.String()
	if strings.Contains(out, "did not exit within") || strings.Contains(out, "rebalance timeout") {
		t.Fatalf("the revoke timed out:\n%s", out)
	}
	if n := strings.Count(out, `"msg":"partition revoked: finishing what is in flight"`); n != 2 {
		t.Errorf("%d revokes seen while waiting, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, `"msg":"partition released","topic"`); n != 2 {
		t.Errorf("%d revoked partitions released, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, `"msg":"joined group"`); n != 1 {
		t.Errorf("a joined the group %d times: its session must survive the revoke", n)
	}
	stop()
	for _, done := range []chan error{doneA, doneB} {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
