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
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"dlq", "replay"}, args...), &stdout, &stderr); code != exitOK {
		t.Fatalf("dlq replay %v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
	}
	return stdout.String()
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
