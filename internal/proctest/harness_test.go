package proctest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	text = strings.Replace(text, "  brokers: ${KAFKA_BROKERS:-localhost:9092}", "  brokers: ${KAFKA_BROKERS:-localhost:9092}\n"+clientField, 1)
	if !strings.Contains(text, sourceFields) || !strings.Contains(text, clientField) {
		t.Fatal("orders.yaml changed: cannot add the test's source fields and client")
	}
	path := filepath.Join(t.TempDir(), "orders.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientField is the kafka block's client, as eachClient sets it: the test pipelines run on
// franz-go unless a test says otherwise.
const clientField = "  client: ${KAFKA_CLIENT:-franz-go}"

// clients are the Kafka clients at-least-once runs on (kafka.client): one suite of behaviours
// — the fault table, crashes, rebalances, SIGTERM — runs on each, so that neither drifts.
var clients = []string{"franz-go", "sarama"}

// eachClient runs test once per client, as a subtest named after it, with the ${KAFKA_CLIENT}
// of the pipelines it starts set to it.
func eachClient(t *testing.T, test func(t *testing.T)) {
	for _, c := range clients {
		t.Run(c, func(t *testing.T) {
			t.Setenv("KAFKA_CLIENT", c)
			test(t)
		})
	}
}

// start runs pythia-pipe with args against b.
func start(t testing.TB, b *devbroker.Broker, name string, args ...string) *testproc.Proc {
	t.Helper()
	return startEnv(t, b, name, nil, args...)
}

// startEnv runs pythia-pipe with args against b, with env (NAME=value) added to its
// environment: what a pipeline file's ${NAME} reads.
func startEnv(t testing.TB, b *devbroker.Broker, name string, env []string, args ...string) *testproc.Proc {
	t.Helper()
	return testproc.Start(t, binary, name, append([]string{"KAFKA_BROKERS=" + strings.Join(b.Addrs(), ",")}, env...), args...)
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

// verifyExactlyOnce checks the outputs as read_committed readers see them (devbroker's
// Read): each record of the feed's first n that should come out is in its topic once
// — never twice, t.Fatalf otherwise — and as the pipeline makes it (checkOutput); a filtered
// one in none; and the group committed the end of every partition of orders. It returns the
// records of aborted transactions the topics hold besides, which read_committed readers skip.
func verifyExactlyOnce(t testing.TB, b *devbroker.Broker, n int) (aborted int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A killed process's open transaction holds read_committed readers back until the broker
	// aborts it (at transaction_timeout; Kafka looks every 10s): Read would stop short.
	for _, topic := range []string{"orders-out", "orders-big", "orders-dlq"} {
		waitFor(t, 2*time.Minute, "no transaction open in "+topic, func() bool { return b.Stable(topic) })
	}
	feed := devbroker.OrdersFeed(n)
	copies := make([]int, n)
	var duplicates []int
	for _, sink := range []string{"out", "big", "dlq"} {
		topic := "orders-" + sink
		recs, err := b.Read(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			seq, err := strconv.Atoi(r.Headers["seq"])
			if err != nil || seq < 0 || seq >= n {
				t.Fatalf("%s: a record whose seq header is %q", topic, r.Headers["seq"])
			}
			if fate := devbroker.OrdersFate(seq); fate != sink {
				t.Fatalf("%s: record %d, which belongs to %s", topic, seq, fate)
			}
			if copies[seq]++; copies[seq] == 2 {
				duplicates = append(duplicates, seq)
			}
			if bad := checkOutput(sink, r, feed[seq]); bad != "" {
				t.Fatalf("%s: record %d: %s", topic, seq, bad)
			}
		}
		all, err := b.CountUncommitted(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		aborted += all - len(recs)
	}
	var missing []int
	for seq, c := range copies {
		if c == 0 && devbroker.OrdersFate(seq) != "dropped" {
			missing = append(missing, seq)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d records lost (read_committed), the first %v", len(missing), missing[:min(10, len(missing))])
	}
	if len(duplicates) > 0 {
		t.Fatalf("%d records written more than once (read_committed), the first %v", len(duplicates), duplicates[:min(10, len(duplicates))])
	}
	committed, ends := b.Committed(group, "orders"), b.EndOffsets("orders")
	if len(ends) == 0 {
		t.Fatal("orders: no end offsets")
	}
	for p, end := range ends {
		if committed[p] != end {
			t.Fatalf("orders partition %d: committed offset %d, log end %d (committed %v, ends %v)", p, committed[p], end, committed, ends)
		}
	}
	return aborted
}

// checkOutput says what is wrong with r, the copy in sink (out, big or dlq) of in, or "":
// its key and timestamp are in's; the DLQ's holds in's bytes and says where and why it
// failed; the others are in's order reshaped by the pipeline.
func checkOutput(sink string, r, in devbroker.Record) string {
	if string(r.Key) != string(in.Key) || !r.Timestamp.Equal(in.Timestamp) {
		return fmt.Sprintf("key %q timestamp %v; want %q %v", r.Key, r.Timestamp, in.Key, in.Timestamp)
	}
	if sink == "dlq" {
		if string(r.Value) != string(in.Value) {
			return fmt.Sprintf("not the original bytes: %s", r.Value)
		}
		for h, want := range map[string]string{"pythia.stage": "parse", "pythia.pipeline": "orders", "pythia.source.topic": "orders", "pythia.attempts": "1"} {
			if r.Headers[h] != want {
				return fmt.Sprintf("header %s = %q, want %q", h, r.Headers[h], want)
			}
		}
		for _, h := range []string{"pythia.error", "pythia.source.partition", "pythia.source.offset", "pythia.source.timestamp", "pythia.failed_at"} {
			if r.Headers[h] == "" {
				return "no header " + h
			}
		}
		return ""
	}
	var got, orig map[string]any
	if err := json.Unmarshal(r.Value, &got); err != nil {
		return fmt.Sprintf("not JSON: %v", err)
	}
	if err := json.Unmarshal(in.Value, &orig); err != nil {
		return fmt.Sprintf("the feed's record is not JSON: %v", err)
	}
	amount := orig["amount"].(float64)
	if got["order_id"] != orig["order_id"] || got["customer_id"] != orig["customer_id"] || got["amount"] != amount ||
		got["region"] != strings.ToUpper(orig["region"].(string)) || got["total_cents"] != float64(int64(amount*100+0.5)) ||
		got["note"] != orig["note"] || len(got) != len(orig)+1 {
		return fmt.Sprintf("%s from %s", r.Value, in.Value)
	}
	return ""
}

// feed produces the records from..to-1 of the orders example's feed (devbroker.OrdersFeedRange).
func feed(t testing.TB, b *devbroker.Broker, from, to int) {
	t.Helper()
	if err := b.Produce(context.Background(), "orders", devbroker.OrdersFeedRange(from, to)); err != nil {
		t.Fatal(err)
	}
}

// terminate sends SIGTERM to every process, then expects each to drain and exit 0.
func terminate(t testing.TB, procs ...*testproc.Proc) {
	t.Helper()
	for _, p := range procs {
		p.Signal(t, syscall.SIGTERM)
	}
	for _, p := range procs {
		if code := p.Wait(t, 30*time.Second); code != 0 {
			t.Errorf("%s exited %d", p.Name, code)
		}
	}
}

// sharing reports whether the orders example's group has n members, each with partitions
// assigned.
func sharing(b *devbroker.Broker, n int) bool { return sharingIn(b, group, n) }

// sharingIn reports whether grp has n members, each with partitions assigned.
func sharingIn(b *devbroker.Broker, grp string, n int) bool {
	members := b.Members(grp)
	if len(members) != n {
		return false
	}
	for _, assigned := range members {
		if assigned == 0 {
			return false
		}
	}
	return true
}
