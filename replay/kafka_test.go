package replay

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// dlqBroker is an in-process broker whose orders-dlq holds devbroker.ExactlyOnceDLQ, with
// an admin on it; both close with the test.
func dlqBroker(t *testing.T) (*devbroker.Broker, *kafkaio.Admin) {
	t.Helper()
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
	admin, err := kafkaio.NewAdmin(&kafkaconn.Config{Brokers: b.Addrs(), ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return b, admin
}

// A replay whose group has a member (another replay) is refused: each would wait for the
// partitions the other holds. A dry run reads without joining, and goes on.
func TestRunBusyGroup(t *testing.T) {
	b, admin := dlqBroker(t)
	member, err := b.Client(kgo.ConsumerGroup("replay"), kgo.ConsumeTopics("orders-dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(b.Members("replay")) == 0 {
		polled, stop := context.WithTimeout(ctx, 100*time.Millisecond)
		member.PollFetches(polled) // joins the group
		stop()
		if ctx.Err() != nil {
			t.Fatal("the member did not join within a minute")
		}
	}
	var busy *BusyGroupError
	if err := New(admin, "orders-dlq", []string{"orders"}, Options{Group: "replay", MaxReplays: 1}).Run(ctx); !errors.As(err, &busy) || busy.Members != 1 {
		t.Fatalf("a replay beside a member: %v", err)
	}
	dry := New(admin, "orders-dlq", []string{"orders"}, Options{Group: "replay", MaxReplays: 1, DryRun: true})
	if err := dry.Run(ctx); err != nil || dry.Stats().Replayed != 5 {
		t.Fatalf("a dry run beside a member: %v, %+v", err, dry.Stats())
	}
}

// An interrupted replay has committed what it wrote, and the next goes on from there: every
// record is written once.
func TestRunInterrupted(t *testing.T) {
	b, admin := dlqBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := Options{Group: "replay", MaxReplays: 1, Rate: 50}

	interrupted, interrupt := context.WithCancel(ctx)
	defer interrupt()
	first := opts
	var shown atomic.Int32
	first.Show = func(*kafkaio.Message) { // Ctrl-C right after the second write is acknowledged
		if shown.Add(1) == 2 {
			interrupt()
		}
	}
	r := New(admin, "orders-dlq", []string{"orders"}, first)
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

	r = New(admin, "orders-dlq", []string{"orders"}, opts)
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
