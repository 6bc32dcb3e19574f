package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/engine"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// runUntilCaughtUp runs the pipeline in file on b until its group has committed the end of
// its source, then stops it.
func runUntilCaughtUp(t *testing.T, b *devbroker.Broker, file string) {
	t.Helper()
	p, diags, err := pipeline.LoadFile(file, pipeline.Options{})
	if err != nil || len(diags) > 0 {
		t.Fatal(err, diags.Err())
	}
	r, err := engine.ConnectKafka(p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for deadline := time.Now().Add(30 * time.Second); !b.CaughtUp(p.KafkaSource().Group, "orders"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not catch up within 30s", file)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func replayCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := cli(t, append([]string{"dlq", "replay"}, args...)...)
	if code != exitOK {
		t.Fatalf("dlq replay %v: exit %d\n%s%s", args, code, stdout, stderr)
	}
	return stdout
}

// Poison records are dead-lettered; the pipeline is fixed; the records are replayed and come
// out; a second replay goes on from where the first ended.
func TestDLQReplay(t *testing.T) {
	b := ordersBroker(t, 3)
	feed := []devbroker.Record{
		{Key: []byte("c1"), Value: []byte(`{"order_id":"o1","customer_id":"c1","amount":10,"region":"eu"}`)},
		{Key: []byte("c2"), Value: []byte(`{"order_id":"o2","customer_id":"c2","amount":"12.5","region":"eu"}`), Headers: map[string]string{"trace": "t-2"}},
		{Key: []byte("c3"), Value: []byte(`{"order_id":"o3","customer_id":"c3","amount":"7","region":"us"}`)},
		{Key: []byte("c4"), Value: []byte(`not json`)},
	}
	if err := b.Produce(context.Background(), "orders", feed); err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, b, "../../pipelines/orders.yaml")
	if n := count(b.EndOffsets("orders-dlq")); n != 3 {
		t.Fatalf("%d dead-lettered, want 3", n)
	}

	// The fix: amounts written as strings are taken as numbers.
	fixed := filepath.Join(t.TempDir(), "orders.yaml")
	src, err := os.ReadFile("../../pipelines/orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src = bytes.Replace(src, []byte("      amount: float\n"), []byte("      amount: any\n"), 1)
	src = bytes.Replace(src, []byte("  - name: valid\n"), []byte("  - name: fix\n    type: map\n    set: {amount: float(msg.amount)}\n  - name: valid\n"), 1)
	if err := os.WriteFile(fixed, src, 0o644); err != nil {
		t.Fatal(err)
	}

	before := count(b.EndOffsets("orders"))
	out := replayCLI(t, fixed, "--error", "expected float", "--dry-run")
	t.Logf("dry run:\n%s", out)
	if !strings.Contains(out, "would replay to orders/") || strings.Count(out, "would replay") != 2 || count(b.EndOffsets("orders")) != before {
		t.Fatalf("dry run:\n%s", out)
	}
	out = replayCLI(t, fixed, "--error", "expected float")
	t.Logf("replay:\n%s", out)
	if !strings.Contains(out, "read 3, replayed 2; skipped: 1 not matching") {
		t.Fatalf("replay:\n%s", out)
	}
	runUntilCaughtUp(t, b, fixed)
	got, err := b.Read(context.Background(), "orders-out")
	if err != nil {
		t.Fatal(err)
	}
	replayed := map[string]map[string]string{}
	for _, r := range got {
		if r.Headers["pythia.replayed"] != "" {
			replayed[string(r.Key)] = r.Headers
		}
	}
	if len(replayed) != 2 || replayed["c2"]["trace"] != "t-2" || replayed["c3"] == nil || replayed["c2"]["pythia.error"] != "" {
		t.Fatalf("out has %d records, the replayed ones: %v", len(got), replayed)
	}
	if n := count(b.EndOffsets("orders-dlq")); n != 3 {
		t.Fatalf("%d dead-lettered after the fix, want still 3", n)
	}
	if out := replayCLI(t, fixed); !strings.Contains(out, "read 0, replayed 0") {
		t.Fatalf("a second replay read again what the first did:\n%s", out)
	}
}

func count(ends map[int32]int64) int64 {
	var n int64
	for _, e := range ends {
		n += e
	}
	return n
}

// dlq replay reads an exactly-once pipeline's DLQ read_committed: it ends although the last
// offset of each partition is a transaction marker, and it replays the committed copies
// only (5, not 11); its group then stands at the end of every partition.
func TestReplayTransactionalDLQ(t *testing.T) {
	b := ordersBroker(t, 3)
	exactlyOnceDLQ(t, b)
	const file = "../../pipelines/orders.yaml"

	out := replayCLI(t, file, "--dry-run")
	if !strings.Contains(out, "read 5, replayed 5;") || strings.Count(out, "would replay to orders/") != 5 {
		t.Fatalf("dry run:\n%s", out)
	}
	out = replayCLI(t, file, "--dry-run", "--read-uncommitted")
	if !strings.Contains(out, "read 11, replayed 11;") {
		t.Fatalf("dry run, read_uncommitted:\n%s", out)
	}
	if n := count(b.EndOffsets("orders")); n != 0 {
		t.Fatalf("the dry runs wrote %d records", n)
	}
	if c := b.Committed("order-processors-dlq-replay", "orders-dlq"); len(c) != 0 {
		t.Fatalf("the dry runs committed %v", c)
	}

	out = replayCLI(t, file)
	if !strings.Contains(out, "read 5, replayed 5;") {
		t.Fatalf("replay:\n%s", out)
	}
	got, err := b.Read(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.Headers["pythia.replayed"] != "1" || r.Headers["pythia.error"] != "" || r.Headers["trace"] != "t-"+string(r.Key[1:]) {
			t.Errorf("replayed %s to %d with headers %v", r.Key, r.Partition, r.Headers)
		}
		if want := int32(r.Key[1]-'0') % 3; r.Partition != want {
			t.Errorf("%s went to partition %d, was read from %d", r.Key, r.Partition, want)
		}
	}
	if keys := devbroker.Keys(got); keys != "c0,c1,c2,c3,c4" {
		t.Fatalf("orders holds %s, want c0..c4 once each", keys)
	}
	committed, ends := b.Committed("order-processors-dlq-replay", "orders-dlq"), b.EndOffsets("orders-dlq")
	for p, end := range ends {
		if committed[p] != end {
			t.Errorf("partition %d: the group committed %d, the DLQ ends at %d", p, committed[p], end)
		}
	}
	if out := replayCLI(t, file); !strings.Contains(out, "read 0, replayed 0;") {
		t.Fatalf("a second replay read again what the first did:\n%s", out)
	}
}

// A DLQ record naming a topic the pipeline does not read is refused, counted and written
// nowhere; --to names where every replayed record goes, and then it goes there.
func TestReplayRefusesForgedTopic(t *testing.T) {
	b := ordersBroker(t, 3)
	recs := append(devbroker.DeadLettered(2, "orders"), devbroker.DeadLettered(1, "orders-big")...)
	recs[2].Key = []byte("forged")
	if err := b.Produce(context.Background(), "orders-dlq", recs); err != nil {
		t.Fatal(err)
	}
	const file = "../../pipelines/orders.yaml"
	code, stdout, stderr := cli(t, "dlq", "replay", file)
	t.Logf("replay:\n%s%s", stdout, stderr)
	if code != exitOK || !strings.Contains(stdout, "read 3, replayed 2;") || !strings.Contains(stdout, "refused: 1 from a topic the pipeline does not read (--to TOPIC") ||
		!strings.Contains(stderr, "refused: its pythia.source.topic is not a topic the pipeline reads") || !strings.Contains(stderr, "orders-big") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if n := count(b.EndOffsets("orders-big")); n != 0 {
		t.Fatalf("%d records written to orders-big", n)
	}
	if n := count(b.EndOffsets("orders")); n != 2 {
		t.Fatalf("%d records written to orders, want 2", n)
	}

	out := replayCLI(t, file, "--to", "orders-big", "--group", "to-big")
	if !strings.Contains(out, "read 3, replayed 3;") || !strings.Contains(out, "refused: 0") {
		t.Fatalf("replay --to:\n%s", out)
	}
	got, err := b.Read(context.Background(), "orders-big")
	if err != nil {
		t.Fatal(err)
	}
	if keys := devbroker.Keys(got); keys != "c0,c1,forged" {
		t.Fatalf("orders-big holds %s", keys)
	}
	if code, stdout, stderr := cli(t, "dlq", "replay", file, "--to", "orders-fixed"); code != exitInvalid || !strings.Contains(stderr, "orders-fixed do not exist") {
		t.Fatalf("--to a topic that does not exist: exit %d\n%s%s", code, stdout, stderr)
	}
}
