package proctest

import (
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

const group = "order-processors"

// Test 2 of the run issue: SIGKILL at random moments while 200,000 records are processed,
// a restart after each; at the end nothing is lost. Duplicates are allowed and reported.
func TestCrashRecovery(t *testing.T) {
	eachClient(t, func(t *testing.T) {
		const n, kills = 200_000, 5
		b := cluster(t, 3)
		feed(t, b, 0, n)
		file := ordersPipeline(t)
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		for k := 0; k < kills; k++ {
			p := start(t, b, "run", "run", file)
			// A random moment: after a random amount of further output (1% to 10% of the feed).
			target := written(b) + int64(n/100+rng.IntN(n/10))
			waitFor(t, 90*time.Second, "progress before the kill", func() bool { return written(b) >= target || !p.Running() })
			if !p.Running() {
				t.Fatalf("pythia-pipe exited before it was killed")
			}
			p.Signal(t, syscall.SIGKILL)
			p.Wait(t, 10*time.Second)
			t.Logf("kill %d at %d records written", k+1, written(b))
		}
		finish(t, b, file, "final run")
		dups := verify(t, b, n)
		t.Logf("after %d SIGKILLs: nothing lost, %d duplicates (%.2f%% of %d records)", kills, dups, 100*float64(dups)/float64(n), n)
	})
}

// Test 3 of the run issue: three processes in one group; one is killed and another added
// mid-way; nothing is lost. The feed arrives in thirds, so each step has work to interrupt
// however fast the broker and the processes are: the first third while the group forms, the
// second while all three share it (b is killed in the middle of it), the last after d joined.
func TestRebalanceAcrossProcesses(t *testing.T) {
	eachClient(t, func(t *testing.T) {
		const n = 150_000
		b := cluster(t, 6)
		feed(t, b, 0, n/3)
		file := ordersPipeline(t)
		a := start(t, b, "a", "run", file)
		bb := start(t, b, "b", "run", file)
		c := start(t, b, "c", "run", file)
		waitFor(t, 60*time.Second, "three members sharing the partitions", func() bool { return sharing(b, 3) })
		// At most 90% of the first two thirds is written (the rest is filtered out), plus any
		// duplicates of the group forming: the target is always reachable.
		target := written(b) + n/10
		feed(t, b, n/3, 2*n/3)
		waitFor(t, 90*time.Second, "a tenth of the feed more", func() bool { return written(b) >= target })
		bb.Signal(t, syscall.SIGKILL)
		bb.Wait(t, 10*time.Second)
		t.Logf("b killed at %d records written", written(b))
		d := start(t, b, "d", "run", file)
		// d joins through a rebalance that ends only once b's session has expired.
		waitFor(t, 60*time.Second, "the group to take the new member in", func() bool {
			return strings.Contains(d.Output(), `"msg":"joined group"`) && len(b.Members(group)) == 3
		})
		feed(t, b, 2*n/3, n)
		waitFor(t, 180*time.Second, "the group to commit the end of the feed", func() bool { return b.CaughtUp(group, "orders") })
		terminate(t, a, c, d)
		dups := verify(t, b, n)
		t.Logf("a member killed and one added: nothing lost, %d duplicates", dups)
	})
}

// Test 4 of the run issue: SIGTERM drains — exit 0 within the drain deadline, and a restart
// repeats nothing (only records still in flight at the deadline could repeat).
func TestSigtermDrains(t *testing.T) {
	eachClient(t, func(t *testing.T) {
		const n = 100_000
		b := cluster(t, 3)
		feed(t, b, 0, n)
		file := ordersPipeline(t)
		p := start(t, b, "first", "run", file)
		waitFor(t, 90*time.Second, "a third of the feed", func() bool { return written(b) >= n/3 })
		stopped := time.Now()
		p.Signal(t, syscall.SIGTERM)
		code := p.Wait(t, 40*time.Second) // drain_timeout is 15s
		took := time.Since(stopped)
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM", code)
		}
		if took > 20*time.Second {
			t.Errorf("took %v to exit after SIGTERM; the drain deadline is 15s", took)
		}
		if strings.Contains(p.Output(), "drain timeout") {
			t.Fatalf("the drain timed out:\n%s", testproc.LastLines(p.Output(), 20))
		}
		atStop := written(b)
		if b.CaughtUp(group, "orders") {
			t.Fatal("the first run finished the feed: nothing was in flight at SIGTERM")
		}
		finish(t, b, file, "restart")
		dups := verify(t, b, n)
		t.Logf("SIGTERM after %d records written, exit 0 in %v; after restart: %d duplicates", atStop, took.Round(time.Millisecond), dups)
		if dups != 0 {
			t.Errorf("%d records were written twice although the drain finished", dups)
		}
	})
}

// finish runs pythia-pipe (with env added to its environment) until the group has committed
// the end of the feed, then stops it with SIGTERM and expects exit 0. It returns the process,
// for what it logged.
func finish(t *testing.T, b *devbroker.Broker, file, name string, env ...string) *testproc.Proc {
	t.Helper()
	p := startEnv(t, b, name, env, "run", file)
	waitFor(t, 180*time.Second, name+" to finish the feed", func() bool { return b.CaughtUp(group, "orders") })
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("%s exited %d", name, code)
	}
	return p
}
