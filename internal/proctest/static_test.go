package proctest

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// staticPipeline writes the orders example with a session timeout of session and, unless
// instanceID is empty, static group membership.
func staticPipeline(t testing.TB, instanceID string, session time.Duration) string {
	t.Helper()
	fields := fmt.Sprintf("  session_timeout: %v\n  heartbeat_interval: 500ms\n  rebalance_timeout: 30s\n  drain_timeout: 10s\n  commit_interval: 200ms\n  max_pending: 2000", session)
	if instanceID != "" {
		fields += "\n  instance_id: " + instanceID
	}
	return ordersWith(t, fields)
}

// restartToFirstOutput runs the orders example over a backlog, kills it with SIGKILL in the
// middle, starts it again and returns how long the new process took to write its first
// record, and what that process logged. It checks that nothing was lost.
func restartToFirstOutput(t testing.TB, instanceID string, session time.Duration) (time.Duration, string) {
	const n = 60_000
	b := cluster(t, 3)
	feed(t, b, 0, n)
	file := staticPipeline(t, instanceID, session)
	first := start(t, b, "first", "run", file)
	waitFor(t, 90*time.Second, "a third of the feed written", func() bool { return written(b) >= n/3 })
	first.Signal(t, syscall.SIGKILL)
	first.Wait(t, 10*time.Second)
	before := written(b)
	restarted := time.Now()
	second := start(t, b, "second", "run", file)
	waitFor(t, 3*session, "the restarted process to write", func() bool { return written(b) > before })
	took := time.Since(restarted)
	waitFor(t, 120*time.Second, "the feed to be finished", func() bool { return b.CaughtUp(group, "orders") })
	second.Signal(t, syscall.SIGTERM)
	if code := second.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	verify(t, b, n)
	return took, second.Output()
}

// Static membership (source.instance_id): a member killed and restarted takes its partitions
// back at once, instead of waiting for the group to give up on the dead member after
// session_timeout (BenchmarkRestartToFirstOutput compares both).
func TestStaticMemberRestart(t *testing.T) {
	const session = 30 * time.Second
	took, _ := restartToFirstOutput(t, "orders-0", session)
	t.Logf("restart to first output with instance_id: %v (session_timeout %v)", took.Round(time.Millisecond), session)
	if took > session/3 {
		t.Errorf("the restarted static member took %v to write, as long as a new member waiting out the session timeout", took)
	}
}

// A member without instance_id, restarted after a kill, waits for the group to give up on the
// dead one (session_timeout): its log says what it waits for and why while it waits, not only
// partitions: 0, and says when the wait is over.
func TestRestartedMemberSaysWhyItWaits(t *testing.T) {
	const session = 10 * time.Second
	_, out := restartToFirstOutput(t, "", session)
	for _, want := range []string{
		`"msg":"waiting","pipeline":"orders","waiting_on":"Kafka: the consumer group ` + group + ` to take this member in, for `,
		"keeps its partitions until its session_timeout (10s) runs out; with instance_id a restarted member takes its own back at once",
		`"msg":"done waiting","pipeline":"orders","on":"Kafka"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the restarted member did not log %q:\n%s", want, testproc.LastLines(out, 40))
		}
	}
}

// BenchmarkRestartToFirstOutput measures, with and without static membership, how long a
// process killed and restarted takes to write again (session_timeout 10s, the group's default
// is 45s).
func BenchmarkRestartToFirstOutput(b *testing.B) {
	for _, c := range []struct{ name, id string }{{"static", "orders-0"}, {"dynamic", ""}} {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				took, _ := restartToFirstOutput(b, c.id, 10*time.Second)
				total += took
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/restart")
		})
	}
}
