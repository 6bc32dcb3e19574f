package replay

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// An interrupted replay has committed what it wrote, and the next goes on from there: every
// record is written once.
func TestRunInterrupted(t *testing.T) {
	b, err := devbroker.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	for _, topic := range []string{"orders", "orders-dlq"} {
		if err := b.CreateTopic(topic, 3); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.ExactlyOnceDLQ(ctx, "orders-dlq", "orders"); err != nil {
		t.Fatal(err)
	}
	conn := []kgo.Opt{kgo.SeedBrokers(b.Addrs()...)}
	opts := Options{Group: "replay", MaxReplays: 1, Rate: 50}

	first, stop := opts, make(chan struct{})
	var shown atomic.Int32
	first.Show = func(*kgo.Record) {
		if shown.Add(1) == 2 {
			close(stop)
		}
	}
	interrupted, interrupt := context.WithCancel(ctx)
	go func() {
		select {
		case <-stop:
			interrupt()
		case <-interrupted.Done():
		}
	}()
	r := New(conn, "orders-dlq", []string{"orders"}, first)
	if err := r.Run(interrupted); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if s := r.Stats(); s.Replayed != 2 {
		t.Fatalf("interrupted after %+v, want 2 replayed", s)
	}
	var committed int64
	for _, c := range b.Committed("replay", "orders-dlq") {
		committed += c
	}
	if committed == 0 {
		t.Fatal("the interrupted run committed nothing")
	}

	r = New(conn, "orders-dlq", []string{"orders"}, opts)
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.Replayed != 3 || s.Read != 3 {
		t.Fatalf("the second run: %+v, want the 3 left", s)
	}
	got, err := b.Read(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if keys := devbroker.Keys(got); keys != "c0,c1,c2,c3,c4" {
		t.Fatalf("orders holds %s, want c0..c4 once each", keys)
	}
}
