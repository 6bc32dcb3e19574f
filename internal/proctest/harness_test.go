package proctest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// binary is the pythia-pipe binary under test, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pythia-proctest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// With -race, the processes are checked for data races as well.
	if binary, err = testproc.Build("../..", dir, raceEnabled); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var waitFor = testproc.WaitFor

// cluster starts a broker (newBroker: in-process, or a real Kafka with the e2e build tag)
// whose groups accept short session timeouts, with the orders example's topics.
func cluster(t testing.TB, partitions int32) *devbroker.Broker {
	t.Helper()
	b := newBroker(t)
	for _, topic := range []string{"orders", "orders-out", "orders-big", "orders-dlq"} {
		if err := b.CreateTopic(topic, partitions); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// ordersPipeline writes the orders example with timeouts short enough for tests: a dead
// process leaves the group within seconds.
func ordersPipeline(t testing.TB) string {
	t.Helper()
	return ordersWith(t, `  session_timeout: 3s
  heartbeat_interval: 500ms
  rebalance_timeout: 30s
  drain_timeout: 15s
  commit_interval: 200ms
  max_pending: 2000`)
}

// ordersWith writes the orders example with source fields added after its start field.
func ordersWith(t testing.TB, sourceFields string) string {
	t.Helper()
	src, err := os.ReadFile("../../pipelines/orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "  start: earliest", "  start: earliest\n"+sourceFields, 1)
	if text == string(src) {
		t.Fatal("orders.yaml changed: cannot add the test's source fields")
	}
	path := filepath.Join(t.TempDir(), "orders.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs pythia-pipe with args against b.
func start(t testing.TB, b *devbroker.Broker, name string, args ...string) *testproc.Proc {
	t.Helper()
	return testproc.Start(t, binary, name, []string{"KAFKA_BROKERS=" + strings.Join(b.Addrs(), ",")}, args...)
}

// written counts the records in the orders example's output topics.
func written(b *devbroker.Broker) int64 {
	var n int64
	for _, topic := range []string{"orders-out", "orders-big", "orders-dlq"} {
		for _, end := range b.EndOffsets(topic) {
			n += end
		}
	}
	return n
}

// outcome reads the output topics and counts, by the feed's seq header, how often each
// record was written.
func outcome(t testing.TB, b *devbroker.Broker) map[int]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	counts := map[int]int{}
	for _, topic := range []string{"orders-out", "orders-big", "orders-dlq"} {
		recs, err := b.Read(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			var seq int
			if _, err := fmt.Sscan(r.Headers["seq"], &seq); err != nil {
				t.Fatalf("%s: a record without its seq header", topic)
			}
			counts[seq]++
		}
	}
	return counts
}

// verify checks that every record of the feed that should come out came out; it returns the
// number of duplicates.
func verify(t testing.TB, b *devbroker.Broker, n int) (duplicates int) {
	t.Helper()
	counts := outcome(t, b)
	var missing []int
	for i := 0; i < n; i++ {
		c := counts[i]
		switch dropped := devbroker.OrdersFate(i) == "dropped"; {
		case dropped && c > 0:
			t.Fatalf("record %d was filtered out but written %d times", i, c)
		case dropped:
		case c == 0:
			missing = append(missing, i)
		default:
			duplicates += c - 1
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d records lost, the first %v", len(missing), missing[:min(10, len(missing))])
	}
	return duplicates
}

// feed produces the records from..to-1 of the orders example's feed (devbroker.OrdersFeedRange).
func feed(t testing.TB, b *devbroker.Broker, from, to int) {
	t.Helper()
	if err := b.Produce(context.Background(), "orders", devbroker.OrdersFeedRange(from, to)); err != nil {
		t.Fatal(err)
	}
}
