package bench

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// BenchmarkHandWrittenFranz is the other number to beat: the orders example's work (transform,
// as the sarama loop does it) in the franz-go loop an engineer writes in an afternoon — poll a
// batch, transform it, ProduceSync its outputs (acks=all and idempotent: franz-go's defaults),
// mark its records — with the marks committed every commitInterval, as the other peers commit.
func BenchmarkHandWrittenFranz(b *testing.B) { benchLoop(b, "hand-written-franz", startFranzLoop) }

// franzPoll is how many records the franz-go loop takes a poll. The loop is serial (its
// transform and its writes do not overlap), so a batch must be large enough for a write's
// round trip to be small beside transforming it. Measured in process over 300,000 records:
// 500 a poll ran 7% slower than 2,000; 10,000 and no bound ran no faster, and peaked 30 and
// 60–90 MB higher (the records and outputs of a batch, held at once).
const franzPoll = 2_000

// startFranzLoop starts the hand-written franz-go loop on orders (group hand-written-franz);
// the function it returns stops it.
func startFranzLoop(b *testing.B, br *devbroker.Broker) (stop func()) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(br.Addrs()...),
		kgo.ConsumerGroup("hand-written-franz"),
		kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Only marked records are committed, and a batch is marked once its writes are
		// acknowledged: at least once. The client commits the marks every commitInterval, and
		// before a revoke and at Close.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(commitInterval),
		// A rebalance waits for the batch in hand, so that its marks are committed by this
		// member rather than its records read again by the next.
		kgo.BlockRebalanceOnPoll(),
	)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := franzBatch(ctx, cl); err != nil && ctx.Err() == nil {
				b.Error(err) // now: the benchmark would only see that nothing is committed
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
		cl.Close() // commits the last marks and leaves the group
	}
}

// franzBatch polls a batch, writes its outputs and marks it.
func franzBatch(ctx context.Context, cl *kgo.Client) error {
	fs := cl.PollRecords(ctx, franzPoll)
	defer cl.AllowRebalance()
	if err := fs.Err(); err != nil {
		return err
	}
	var out []*kgo.Record
	fs.EachRecord(func(r *kgo.Record) {
		if topic, value := transform(r.Value); topic != "" {
			out = append(out, &kgo.Record{Topic: topic, Key: r.Key, Value: value, Timestamp: r.Timestamp})
		}
	})
	if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
		return err
	}
	cl.MarkCommitRecords(fs.Records()...)
	return nil
}
