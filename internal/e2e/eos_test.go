//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// Exactly-once against what a real Kafka refuses (issue 24): the same faults as
// engine/eos_faults_test.go, where it is Kafka's own behaviour that counts.

// routedTopics creates the topics of testdata/good/routed-exactly-once.yaml under its PREFIX:
// small (max.message.bytes 2048), wide (one partition), compacted, recent (records at most an
// hour old), the source and the DLQ; missing stays missing.
func routedTopics(t *testing.T, prefix string) {
	t.Helper()
	for name, configs := range map[string]map[string]string{
		"in": nil, "routed-dlq": nil, "small": {"max.message.bytes": "2048"}, "compacted": {"cleanup.policy": "compact"},
		"recent": {"message.timestamp.before.max.ms": "3600000"}, "wide": nil,
	} {
		partitions := int32(3)
		if name == "wide" {
			partitions = 1
		}
		if err := kafka.CreateTopicWith(prefix+name, partitions, configs); err != nil {
			t.Fatal(err)
		}
	}
}

// startFile runs the binary on the repository's file rel, its topics prefixed, serving its
// metrics at the address returned.
func startFile(t *testing.T, rel, prefix string) (*testproc.Proc, string) {
	t.Helper()
	addr := freeAddr(t)
	env := []string{"KAFKA_BROKERS=" + kafka.Real.Addr("plaintext"), "PREFIX=" + prefix}
	return testproc.Start(t, binary, filepath.Base(rel), env, "run", "../../"+rel, "--metrics-addr", addr), addr
}

// routed is a record of the routed pipeline: id, and the topic it goes to.
func routed(id int, to string, extra string) devbroker.Record {
	return devbroker.Record{Key: []byte("k" + strconv.Itoa(id%7)), Value: fmt.Appendf(nil, `{"id": %d, "to": %q%s}`, id, to, extra), Timestamp: time.Now()}
}

// Records their topics refuse — too large, no key for a compacted topic, too old, a topic not
// allowed or missing — are dead-lettered before they are written; one the broker refuses
// anyway (its topic's limit lowered while the pipeline runs) costs one aborted transaction,
// then is dead-lettered alone. Every other record once, read_committed; the run goes on.
func TestExactlyOnceRecordFaults(t *testing.T) {
	const prefix = "eos-routed-"
	topic := func(name string) string { return prefix + name }
	routedTopics(t, prefix)
	var feed []devbroker.Record
	for id := range 60 {
		feed = append(feed, routed(id, []string{"small", "wide"}[id%2], ""))
	}
	poisons := map[int]string{10: "more than the 2048", 20: "compacted", 30: "in the past", 40: "topic_allow", 50: "does not exist"}
	feed[10] = routed(10, "small", `, "pad": "`+strings.Repeat("x", 3000)+`"`)
	feed[20] = routed(20, "compacted", "")
	feed[20].Key = nil
	feed[30] = routed(30, "recent", "")
	feed[30].Timestamp = time.Now().Add(-2 * time.Hour)
	feed[40] = routed(40, "secret", "")
	feed[50] = routed(50, "missing", "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := kafka.Produce(ctx, topic("in"), feed); err != nil {
		t.Fatal(err)
	}
	p, addr := startFile(t, "testdata/good/routed-exactly-once.yaml", prefix)
	waitCaughtUp(t, p, topic("routed"), topic("in"))

	// An operator lowers wide's limit while the pipeline runs: the rules it read do not know,
	// so the broker refuses the batch holding the record that is now too large.
	if err := kafka.SetTopicConfig(topic("wide"), "max.message.bytes", "1024"); err != nil {
		t.Fatal(err)
	}
	var more []devbroker.Record
	for id := 60; id < 70; id++ {
		more = append(more, routed(id, "wide", ""))
	}
	more[5] = routed(65, "wide", `, "pad": "`+strings.Repeat("y", 2000)+`"`)
	poisons[65] = "MESSAGE_TOO_LARGE"
	if err := kafka.Produce(ctx, topic("in"), more); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, p, topic("routed"), topic("in"))
	aborted, _ := metric(addr, "pythia_pipe_transactions_aborted_total", `reason="write"`)
	stopPipe(t, p)

	seen := map[int]string{}
	for _, name := range []string{"small", "wide", "compacted", "recent"} {
		testproc.WaitFor(t, time.Minute, "no transaction open in "+topic(name), func() bool { return kafka.Stable(topic(name)) })
		recs, err := kafka.Read(ctx, topic(name))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			id := routedID(t, r.Value)
			if prev, twice := seen[id]; twice {
				t.Fatalf("record %d written twice (%s, %s)", id, prev, name)
			}
			seen[id] = name
		}
	}
	testproc.WaitFor(t, time.Minute, "no transaction open in the DLQ", func() bool { return kafka.Stable(topic("routed-dlq")) })
	dlq, err := kafka.Read(ctx, topic("routed-dlq"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range dlq {
		id := routedID(t, r.Value)
		want, poison := poisons[id]
		if !poison || !strings.Contains(r.Headers["pythia.error"], want) {
			t.Errorf("record %d dead-lettered: %s", id, r.Headers["pythia.error"])
		}
		delete(poisons, id)
	}
	if len(poisons) > 0 || len(dlq) != 6 || len(seen) != 70-6 {
		t.Fatalf("%d records out, %d dead-lettered; not dead-lettered: %v", len(seen), len(dlq), poisons)
	}
	if aborted > 1 {
		t.Errorf("%v transactions aborted on a write, want at most 1", aborted)
	}
	t.Logf("64 records out once, 6 dead-lettered once; %v transaction aborted on the refused batch", aborted)
}

func routedID(t *testing.T, value []byte) int {
	t.Helper()
	var m struct{ ID int }
	if err := json.Unmarshal(value, &m); err != nil {
		t.Fatalf("%s: %v", value, err)
	}
	return m.ID
}

// The orders example exactly once, writing to an output topic whose max.message.bytes (4096)
// is far below the producer's batch: its batches are held to it, and every record comes out
// once.
func TestExactlyOnceTopicLimitBatches(t *testing.T) {
	const n = 20_000
	path, topics, group := ordersFile(t, "eoslimit", "  brokers: ${KAFKA_BROKERS}\n")
	exactlyOnce(t, path)
	if err := kafka.SetTopicConfig(topics[1], "max.message.bytes", "4096"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := kafka.Produce(ctx, topics[0], devbroker.OrdersFeed(n)); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := testproc.Start(t, binary, "run", []string{"KAFKA_BROKERS=" + kafka.Real.Addr("plaintext")}, "run", path, "--metrics-addr", addr)
	waitCaughtUp(t, p, group, topics[0])
	aborted, _ := metric(addr, "pythia_pipe_transactions_aborted_total", `reason="write"`)
	stopPipe(t, p)
	if dups := checkOrders(t, kafka, topics, n); dups != 0 || aborted != 0 {
		t.Fatalf("%d duplicates, %v transactions aborted on a write; want none", dups, aborted)
	}
}

// A retry whose attempts outlast the transaction (4 attempts 1–2 s apart, transaction_timeout
// 6 s): the transaction aborts at its deadline, the attempts are kept, and read again the bad
// records go to the DLQ with pythia.attempts 4; every good record once, within a minute.
func TestExactlyOnceRetriesOutlastTransaction(t *testing.T) {
	const n, bad, prefix = 5000, 1000, "eos-retry-"
	names := [3]string{prefix + "in", prefix + "out", prefix + "retrying-dlq"}
	for _, topic := range names {
		if err := kafka.CreateTopic(topic, 3); err != nil {
			t.Fatal(err)
		}
	}
	var feed []devbroker.Record
	for i := range n {
		feed = append(feed, devbroker.Record{Key: []byte("k" + strconv.Itoa(i%7)), Value: fmt.Appendf(nil, `{"id": %d, "n": %d, "bad": %v}`, i, i, i%bad == 500)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := kafka.Produce(ctx, names[0], feed); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	p, addr := startFile(t, "testdata/warn/12-retry-outlasts-transaction.yaml", prefix)
	waitCaughtUp(t, p, prefix+"retrying", names[0])
	took := time.Since(began)
	deadlines, _ := metric(addr, "pythia_pipe_transactions_aborted_total", `reason="deadline"`)
	stopPipe(t, p)
	counts := map[string]int{}
	for _, topic := range names[1:] {
		testproc.WaitFor(t, time.Minute, "no transaction open in "+topic, func() bool { return kafka.Stable(topic) })
		recs, err := kafka.Read(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, r := range recs {
			id := routedID(t, r.Value)
			if seen[id] {
				t.Fatalf("%s: record %d twice", topic, id)
			}
			seen[id] = true
			if topic == names[2] && (id%bad != 500 || r.Headers["pythia.attempts"] != "4") {
				t.Errorf("dead-lettered record %d with pythia.attempts %q", id, r.Headers["pythia.attempts"])
			}
		}
		counts[topic] = len(seen)
	}
	if counts[names[1]] != n-n/bad || counts[names[2]] != n/bad {
		t.Fatalf("%d out, %d dead-lettered; want %d and %d", counts[names[1]], counts[names[2]], n-n/bad, n/bad)
	}
	if deadlines == 0 {
		t.Errorf("no transaction aborted at its deadline: the test needs retries that outlast one")
	}
	t.Logf("caught up in %v; %v transactions aborted at their deadline", took.Round(time.Millisecond), deadlines)
}
