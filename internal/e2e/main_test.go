//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

var (
	binary string
	kafka  *devbroker.Broker // shared by the tests; each uses topics and a group of its own
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "pythia-e2e")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if binary, err = testproc.Build("../..", dir, false); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		began := time.Now()
		if kafka, err = devbroker.StartReal(realkafka.Options{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer kafka.Close()
		defer closeRegistry() // the Avro tests' registry, when one of them started it
		fmt.Printf("e2e: Apache Kafka ready in %v (jars and storage included: %v), listeners %+v\n",
			kafka.Real.Started.Round(time.Millisecond), time.Since(began).Round(time.Millisecond), kafka.Real.Ports)
		return m.Run()
	}())
}

// ordersFile writes the orders example with its topics and group suffixed by name (so tests
// share the broker) and with the given kafka block.
func ordersFile(t *testing.T, name, kafkaBlock string) (path string, topics [4]string, group string) {
	t.Helper()
	src, err := os.ReadFile("../../pipelines/orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	topics = [4]string{"orders-" + name, "orders-" + name + "-out", "orders-" + name + "-big", "orders-" + name + "-dlq"}
	group = "order-processors-" + name
	for old, new := range map[string]string{
		"topics: [orders]": "topics: [" + topics[0] + "]", "topic: orders-out": "topic: " + topics[1],
		"topic: orders-big": "topic: " + topics[2], "topic: orders-dlq": "topic: " + topics[3],
		"group: order-processors": "group: " + group,
		"  start: earliest":       "  start: earliest\n  commit_interval: 200ms\n  drain_timeout: 10s",
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("orders.yaml changed: %q not found", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	text = regexp.MustCompile(`(?m)^kafka:.*\n(  .*\n)*`).ReplaceAllLiteralString(text, "kafka:\n"+kafkaBlock)
	path = filepath.Join(t.TempDir(), "orders.yaml")
	writePipeline(t, path, text, topics[:]...)
	return path, topics, group
}

// checkOrders verifies that every record of an OrdersFeed(n) in topics[0] reached its sink,
// and returns the duplicates.
func checkOrders(t *testing.T, b *devbroker.Broker, topics [4]string, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	where := map[int][]string{}
	for i, sink := range []string{"out", "big", "dlq"} {
		// Under exactly_once the last transaction may still be writing its markers.
		testproc.WaitFor(t, time.Minute, "no transaction open in "+topics[i+1], func() bool { return b.Stable(topics[i+1]) })
		recs, err := b.Read(ctx, topics[i+1])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			var seq int
			fmt.Sscan(r.Headers["seq"], &seq)
			where[seq] = append(where[seq], sink)
		}
	}
	dups := 0
	for i := 0; i < n; i++ {
		fate, got := devbroker.OrdersFate(i), where[i]
		switch {
		case fate == "dropped" && len(got) > 0:
			t.Fatalf("record %d should have been dropped, went to %v", i, got)
		case fate != "dropped" && len(got) == 0:
			t.Fatalf("record %d (for %s) is missing", i, fate)
		case fate != "dropped" && got[0] != fate:
			t.Fatalf("record %d went to %s, want %s", i, got[0], fate)
		}
		if len(got) > 1 {
			dups += len(got) - 1
		}
	}
	return dups
}

// runUntilDone runs the binary on file (with debug logs, so that every log line a record can
// cause is looked at) until group has committed the end of the source topic, then stops it
// with SIGTERM and expects exit 0.
func runUntilDone(t *testing.T, file, group, source string, env ...string) *testproc.Proc {
	t.Helper()
	p := testproc.Start(t, binary, "run", env, "run", file, "--log-level", "debug")
	testproc.WaitFor(t, 5*time.Minute, "the group to commit the end of "+source, func() bool {
		if !p.Running() {
			t.Fatalf("pythia-pipe exited early:\n%s", testproc.LastLines(p.Output(), 20))
		}
		return kafka.CaughtUp(group, source)
	})
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	return p
}

// writePipeline writes the pipeline text to path and creates its topics (3 partitions).
func writePipeline(t *testing.T, path, text string, topics ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		if err := kafka.CreateTopic(topic, 3); err != nil {
			t.Fatal(err)
		}
	}
}
