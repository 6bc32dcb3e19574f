package proctest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// eosPipeline writes the orders example with delivery: exactly_once, its instance_id read
// from ${INSTANCE_ID} (empty: none), and timeouts short enough for tests, in the order the
// exactly-once path needs: transaction_timeout < session_timeout < rebalance_timeout, and
// commit_interval under half of transaction_timeout.
func eosPipeline(t testing.TB) string {
	t.Helper()
	path := ordersWith(t, `  session_timeout: 6s
  heartbeat_interval: 500ms
  rebalance_timeout: 30s
  transaction_timeout: 5s
  drain_timeout: 15s
  commit_interval: 200ms
  max_pending: 2000
  instance_id: ${INSTANCE_ID}`)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "\nkafka:", "\ndelivery: exactly_once\n\nkafka:", 1)
	if text == string(src) {
		t.Fatal("orders.yaml changed: cannot add delivery: exactly_once")
	}
	path = filepath.Join(filepath.Dir(path), "orders-eos.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Exactly-once through crashes: SIGKILL at random moments while transactions are open (every
// 200ms one commits, so a process working through a backlog always has one open), a restart
// with the same instance_id after each — its transactional id fences the killed process and
// aborts what that one left open — then a run to the end. Read read_committed, every record
// is in its sink or the DLQ once, as the pipeline makes it; none twice; the offsets at the
// end of the log.
func TestExactlyOnceCrash(t *testing.T) {
	const n, kills = 100_000, 5
	b := cluster(t, 3)
	feed(t, b, 0, n)
	file := eosPipeline(t)
	env := []string{"INSTANCE_ID=orders-0"}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	for k := 0; k < kills; k++ {
		p := startEnv(t, b, fmt.Sprintf("run %d", k+1), env, "run", file)
		// A random moment: after a random amount of further output (1% to 10% of the feed;
		// at most 55% of it over the kills, and 90% of the feed comes out: always reachable).
		target := written(b) + int64(n/100+rng.IntN(n/10))
		waitFor(t, 120*time.Second, "progress before the kill", func() bool { return written(b) >= target || !p.Running() })
		if !p.Running() {
			t.Fatalf("pythia-pipe exited before it was killed")
		}
		if b.CaughtUp(group, "orders") {
			t.Fatal("the feed was finished before the kill: nothing was in a transaction")
		}
		p.Signal(t, syscall.SIGKILL)
		p.Wait(t, 10*time.Second)
		t.Logf("kill %d at %d records written (aborted ones included), committed %v", k+1, written(b), b.Committed(group, "orders"))
	}
	finish(t, b, file, "final run", env...)
	aborted := verifyExactlyOnce(t, b, n)
	t.Logf("after %d SIGKILLs mid-transaction: every record exactly once (read_committed), 0 duplicates, offsets at the log end; %d records of aborted transactions skipped", kills, aborted)
	if aborted == 0 {
		t.Error("no record of an aborted transaction in the outputs: no kill came while a transaction was open")
	}
}

// Exactly-once across a rebalance: three processes share the group (no instance_id: each
// has a transactional id of its own); one is killed mid-way, its open transaction ended by
// the broker at transaction_timeout, its partitions taken over once its session expired;
// a fourth joins. The feed arrives in thirds as in TestRebalanceAcrossProcesses.
func TestExactlyOnceRebalance(t *testing.T) {
	const n = 90_000
	b := cluster(t, 6)
	feed(t, b, 0, n/3)
	file := eosPipeline(t)
	env := []string{"INSTANCE_ID="}
	a := startEnv(t, b, "a", env, "run", file)
	bb := startEnv(t, b, "b", env, "run", file)
	c := startEnv(t, b, "c", env, "run", file)
	shared := func() bool { return sharing(b, 3) }
	waitFor(t, 90*time.Second, "three members sharing the partitions", shared)
	target := written(b) + n/10
	feed(t, b, n/3, 2*n/3)
	waitFor(t, 120*time.Second, "a tenth of the feed more", func() bool { return written(b) >= target })
	if b.CaughtUp(group, "orders") {
		t.Fatal("the second third was finished before the kill")
	}
	bb.Signal(t, syscall.SIGKILL)
	bb.Wait(t, 10*time.Second)
	t.Logf("b killed at %d records written (aborted ones included)", written(b))
	d := startEnv(t, b, "d", env, "run", file)
	// d joins through a rebalance that ends only once b's session has expired.
	waitFor(t, 90*time.Second, "the group to take the new member in", func() bool {
		return strings.Contains(d.Output(), `"msg":"partitions assigned"`) && shared()
	})
	feed(t, b, 2*n/3, n)
	waitFor(t, 180*time.Second, "the group to commit the end of the feed", func() bool { return b.CaughtUp(group, "orders") })
	terminate(t, a, c, d)
	aborted := verifyExactlyOnce(t, b, n)
	var aborts, timedOut int
	for _, p := range []*testproc.Proc{a, c, d} {
		aborts += strings.Count(p.Output(), `"msg":"transaction aborted`)
		for _, line := range strings.Split(p.Output(), "\n") {
			if strings.Contains(line, "aborted the transaction at transaction_timeout") {
				if timedOut++; timedOut == 1 {
					t.Logf("%s: %s", p.Name, line)
				}
			}
		}
	}
	t.Logf("a member killed and one added: every record exactly once (read_committed), 0 duplicates, offsets at the log end; %d records of aborted transactions skipped; the survivors aborted %d transactions, %d of them timed out by the broker while a rebalance held their commit", aborted, aborts, timedOut)
}
