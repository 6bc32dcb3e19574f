package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// parseOn parses the pipeline file at rel (from the repository's root) with KAFKA_BROKERS
// pointing at b.
func parseOn(t *testing.T, b *devbroker.Broker, rel string) *pipeline.Pipeline {
	t.Helper()
	env := func(k string) (string, bool) {
		if k == "KAFKA_BROKERS" {
			return strings.Join(b.Addrs(), ","), true
		}
		return "", false
	}
	p, diags := pipeline.Parse(rel, repoFile(t, rel), pipeline.Options{Env: env, BaseDir: ".."})
	if diags.Errors() > 0 {
		t.Fatal(diags.Err())
	}
	return p
}

// runToEnd runs p until group has committed the end of topic, then stops it; the run must
// not stop by itself meanwhile.
func runToEnd(t *testing.T, b *devbroker.Broker, p *pipeline.Pipeline, group, topic string) *KafkaRun {
	t.Helper()
	run, stop, ended := startRun(t, p)
	waitFor(t, 60*time.Second, "the group to commit the end of "+topic, func() bool {
		return isClosed(ended) || b.CaughtUp(group, topic)
	})
	if err := stop(); err != nil {
		t.Fatalf("the run stopped: %v", err)
	}
	return run
}

// readStable reads topic as read_committed readers do, once no transaction is open in it.
func readStable(t *testing.T, b *devbroker.Broker, topic string) []devbroker.Record {
	t.Helper()
	waitFor(t, 30*time.Second, "no transaction open in "+topic, func() bool { return b.Stable(topic) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := b.Read(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// poisonWhen matches produce requests that carry a record holding the marker (the test's
// records are written uncompressed, so their bytes are in the request as they are).
func poisonWhen(marker string) func(kmsg.Request) bool {
	return func(r kmsg.Request) bool {
		req, ok := r.(*kmsg.ProduceRequest)
		if !ok {
			return false
		}
		for _, tp := range req.Topics {
			for _, p := range tp.Partitions {
				if bytes.Contains(p.Records, []byte(marker)) {
					return true
				}
			}
		}
		return false
	}
}

// A write refused for the record's own reason — too large for its computed topic, a
// record the broker calls invalid or corrupt, a computed topic not allowed or missing —
// is dead-lettered in a transaction that commits, and the pipeline goes on: 49 records
// out, 1 in the DLQ, each once, read_committed. At most one transaction aborts on the way
// (the broker refused a batch the record was in; its records are then written alone).
func TestExactlyOnceRecordFaults(t *testing.T) {
	cases := []struct {
		name    string
		poison  string      // the poison record's body
		nullKey bool        // the poison has no key
		fault   *kerr.Error // what the broker answers to a produce carrying the poison
		reason  string      // what its pythia.error says
		aborts  int64       // transactions aborted on the way, at most
	}{
		{name: "too large for its computed topic", poison: `{"to": "small", "id": 0, "pad": "` + strings.Repeat("x", 3000) + `"}`,
			reason: "more than the 2048", aborts: 0},
		{name: "invalid record", poison: `{"to": "wide", "id": 0, "poison": true}`, fault: kerr.InvalidRecord,
			reason: "INVALID_RECORD", aborts: 1},
		{name: "invalid timestamp", poison: `{"to": "wide", "id": 0, "poison": true}`, fault: kerr.InvalidTimestamp,
			reason: "INVALID_TIMESTAMP", aborts: 1},
		{name: "corrupt message", poison: `{"to": "wide", "id": 0, "poison": true}`, fault: kerr.CorruptMessage,
			reason: "CORRUPT_MESSAGE", aborts: 1},
		{name: "message too large from the broker", poison: `{"to": "wide", "id": 0, "poison": true}`, fault: kerr.MessageTooLarge,
			reason: "MESSAGE_TOO_LARGE", aborts: 1},
		{name: "no key for a compacted topic", poison: `{"to": "compacted", "id": 0}`, nullKey: true, reason: "compacted", aborts: 0},
		{name: "computed topic not allowed", poison: `{"to": "secret", "id": 0}`, reason: "not in the sink's topic_allow", aborts: 0},
		{name: "computed topic missing", poison: `{"to": "missing", "id": 0}`, reason: "does not exist", aborts: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// wide has one partition: a batch refused there holds no other partition's
			// records (kfake fails every partition a faulted request carries, Kafka one).
			b := startBroker(t, 2, "in", "routed-dlq")
			if err := errors.Join(b.CreateTopic("wide", 1), b.CreateTopicWith("small", 2, map[string]string{"max.message.bytes": "2048"}),
				b.CreateTopicWith("compacted", 1, map[string]string{"cleanup.policy": "compact"})); err != nil {
				t.Fatal(err)
			}
			var feed []devbroker.Record
			for i := range 50 {
				to := []string{"small", "wide"}[i%2]
				feed = append(feed, devbroker.Record{Key: []byte("k" + strconv.Itoa(i%7)), Value: fmt.Appendf(nil, `{"to": %q, "id": %d}`, to, i)})
			}
			feed[25].Value = []byte(strings.Replace(c.poison, `"id": 0`, `"id": 25`, 1))
			if c.nullKey {
				feed[25].Key = nil
			}
			if err := b.Produce(context.Background(), "in", feed); err != nil {
				t.Fatal(err)
			}
			if c.fault != nil {
				b.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "wide", Err: c.fault, Count: -1, When: poisonWhen(`"poison":true`)})
			}
			defer verifyNoLeaks(t)()
			run := runToEnd(t, b, parseOn(t, b, "testdata/good/routed-exactly-once.yaml"), "routed", "in")
			seen := map[int]string{}
			for _, topic := range []string{"small", "wide"} {
				last := map[string]int{} // by partition and key: the order of a key's records is kept
				for _, r := range readStable(t, b, topic) {
					id := bodyID(t, r.Value)
					if prev, twice := seen[id]; twice {
						t.Fatalf("record %d written twice (%s, %s)", id, prev, topic)
					}
					seen[id] = topic
					pk := fmt.Sprintf("%d/%s", r.Partition, r.Key)
					if before, ok := last[pk]; ok && before > id {
						t.Fatalf("%s: record %d after %d of key %s", topic, id, before, r.Key)
					}
					last[pk] = id
				}
			}
			dlq := readStable(t, b, "routed-dlq")
			if len(seen) != 49 || seen[25] != "" || len(dlq) != 1 || bodyID(t, dlq[0].Value) != 25 {
				t.Fatalf("%d records out (record 25 in %q), %d in the DLQ; want 49, none, the poison alone", len(seen), seen[25], len(dlq))
			}
			if !strings.Contains(dlq[0].Headers["pythia.error"], c.reason) || dlq[0].Headers["pythia.stage"] != "out" {
				t.Errorf("dead-lettered by %q: %q; want %q from out", dlq[0].Headers["pythia.stage"], dlq[0].Headers["pythia.error"], c.reason)
			}
			if s := run.Source.Stats(); s.Aborts > c.aborts || s.Aborts != s.AbortsBy["write"] {
				t.Errorf("%d transactions aborted (%v), want at most %d, on a write", s.Aborts, s.AbortsBy, c.aborts)
			}
		})
	}
}

func bodyID(t *testing.T, value []byte) int {
	t.Helper()
	_, rest, ok := bytes.Cut(value, []byte(`"id":`))
	if !ok {
		t.Fatalf("no id in %s", value)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.FieldsFunc(string(rest), func(r rune) bool { return r == ',' || r == '}' })[0]))
	if err != nil {
		t.Fatalf("id in %s: %v", value, err)
	}
	return n
}

// An output topic whose max.message.bytes is below the producer's batch size: its batches
// are held to it, and the orders example in transactions writes every record once.
func TestExactlyOnceTopicLimitBatches(t *testing.T) {
	const n = 5000
	b := startBroker(t, 3, "orders", "orders-big", "orders-dlq")
	if err := b.CreateTopicWith("orders-out", 3, map[string]string{"max.message.bytes": "4096"}); err != nil {
		t.Fatal(err)
	}
	feed := devbroker.OrdersFeed(n)
	if err := b.Produce(context.Background(), "orders", feed); err != nil {
		t.Fatal(err)
	}
	defer verifyNoLeaks(t)()
	run := runToEnd(t, b, loadOrdersEOS(t, b, ""), "order-processors", "orders")
	outs, bigs, dlq := readOrdersCommitted(t, b)
	checkOrders(t, feed, outs, bigs, dlq)
	if a := run.Source.Stats().Aborts; a != 0 {
		t.Errorf("%d transactions aborted, want none", a)
	}
}

// Retries that outlast a transaction: the transaction aborts, but the attempts are kept, so
// that read again the bad records go on from where they were. The 4,995 good records come
// out once, the 5 bad ones reach the DLQ once with pythia.attempts 4, within a minute.
func TestExactlyOnceRetriesOutlastTransaction(t *testing.T) {
	const n, bad = 5000, 1000 // every 1000th record is bad
	b := startBroker(t, 3, "in", "out", "retrying-dlq")
	var feed []devbroker.Record
	for i := range n {
		feed = append(feed, devbroker.Record{Key: []byte("k" + strconv.Itoa(i%7)), Value: fmt.Appendf(nil, `{"id": %d, "n": %d, "bad": %v}`, i, i, i%bad == 500)})
	}
	if err := b.Produce(context.Background(), "in", feed); err != nil {
		t.Fatal(err)
	}
	defer verifyNoLeaks(t)()
	began := time.Now()
	run := runToEnd(t, b, parseOn(t, b, "testdata/warn/12-retry-outlasts-transaction.yaml"), "retrying", "in")
	took := time.Since(began)
	seen := map[int]bool{}
	for _, r := range readStable(t, b, "out") {
		id := bodyID(t, r.Value)
		if seen[id] {
			t.Fatalf("record %d written twice", id)
		}
		seen[id] = true
	}
	dlq := readStable(t, b, "retrying-dlq")
	if len(seen) != n-n/bad || len(dlq) != n/bad {
		t.Fatalf("%d out, %d in the DLQ; want %d and %d", len(seen), len(dlq), n-n/bad, n/bad)
	}
	for _, r := range dlq {
		if id := bodyID(t, r.Value); id%bad != 500 || r.Headers["pythia.attempts"] != "4" {
			t.Errorf("dead-lettered record %d with pythia.attempts %q; want a bad one with 4", id, r.Headers["pythia.attempts"])
		}
	}
	s := run.Source.Stats()
	if s.AbortsBy["deadline"] == 0 {
		t.Errorf("no transaction aborted at its deadline (%v): the test needs records whose retries outlast one", s.AbortsBy)
	}
	t.Logf("caught up in %v; %d transactions committed, %d aborted (%v)", took.Round(time.Millisecond), s.Commits, s.Aborts, s.AbortsBy)
}

// Brief network trouble when a transaction ends — connections dropped on EndTxn or
// TxnOffsetCommit, an EndTxn that timed out (after the broker applied it) — is waited out:
// the transaction counts as aborted (or its commit is found done), the records are read
// again from the offsets the broker holds, and each comes out once. Nothing stops.
func TestExactlyOnceCommitTrouble(t *testing.T) {
	cases := []struct {
		name  string
		fault func(c *kfake.Cluster)
	}{
		// franz-go sends a request again on a new connection once; a connection closed right
		// after its first request it takes for a missing SASL and gives up.
		{"3 connections dropped on EndTxn", func(c *kfake.Cluster) { dropConnections(c, kmsg.EndTxn, 3) }},
		{"6 connections dropped on EndTxn", func(c *kfake.Cluster) { dropConnections(c, kmsg.EndTxn, 6) }},
		{"3 connections dropped on TxnOffsetCommit", func(c *kfake.Cluster) { dropConnections(c, kmsg.TxnOffsetCommit, 3) }},
		{"6 connections dropped on TxnOffsetCommit", func(c *kfake.Cluster) { dropConnections(c, kmsg.TxnOffsetCommit, 6) }},
		{"EndTxn timed out after it was applied", func(c *kfake.Cluster) {
			c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.RequestTimedOut, Count: 2})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const n = 2000
			b := startOrdersBroker(t, 3)
			feed := devbroker.OrdersFeed(n)
			if err := b.Produce(context.Background(), "orders", feed); err != nil {
				t.Fatal(err)
			}
			defer verifyNoLeaks(t)()
			c.fault(b.Cluster)
			run := runToEnd(t, b, loadOrdersEOS(t, b, "  instance_id: one\n  commit_interval: 300ms\n"), "order-processors", "orders")
			outs, bigs, dlq := readOrdersCommitted(t, b)
			checkOrders(t, feed, outs, bigs, dlq)
			s := run.Source.Stats()
			if s.AbortsBy["commit"] == 0 || s.Aborts != s.AbortsBy["commit"] {
				t.Errorf("aborted %v; want the ends not confirmed counted as commit", s.AbortsBy)
			}
			t.Logf("%d committed, %d aborted (%v)", s.Commits, s.Aborts, s.AbortsBy)
		})
	}
}

// dropConnections closes the connection of the next n requests of key, in a row, and of
// every one after them until a transactional producer is renewed (its InitProducerID): a
// client that retries on a connection that served other requests first could otherwise
// absorb the n drops, and its transaction would end confirmed.
func dropConnections(c *kfake.Cluster, key kmsg.Key, n int) {
	var dropped, renewed atomic.Bool
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if r := req.(*kmsg.InitProducerIDRequest); r.TransactionalID != nil && dropped.Load() {
			renewed.Store(true)
			c.DropControl()
		}
		return nil, nil, false
	})
	left := n // control functions run one at a time
	c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl() // kept until DropControl: KeepControl marks the function, not the call
		dropped.Store(true)
		if left--; left <= 0 && renewed.Load() {
			c.DropControl()
			return nil, nil, false
		}
		return nil, errors.New("connection dropped by the test"), true
	})
}
