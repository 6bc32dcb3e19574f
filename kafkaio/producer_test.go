package kafkaio

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// What franz-go's idempotent producer gives by itself, and why the sink's order guard stays.
// Retrying without end (franz-go's default), writes a broker refuses for a while are sent
// again in order and every one gets through: a partition's order is kept, but nothing tells
// the sink that the broker refuses them. Retrying once (ClientRetries), the refused writes
// come back to the sink — all the partition's writes in the client at the time, in order —
// for the order guard to hold the partition, count the refusals, say so and probe.
func TestProducerThroughRefusals(t *testing.T) {
	cases := []struct {
		name    string
		retries int
		refused bool // some writes come back refused
	}{
		{"retrying without end", 0, false},
		{"retrying once", 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			prod, err := NewProducer([]kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)},
				ProducerConfig{Acks: "all", Compression: "none", Idempotent: true, MaxMessageBytes: 1 << 20, Retries: c.retries})
			if err != nil {
				t.Fatal(err)
			}
			fault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: 2})
			const n = 200
			var mu sync.Mutex
			var refused, acked []int
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				m := &Message{Topic: "out", Partition: 0, Value: []byte(strconv.Itoa(i))}
				prod.Produce(context.Background(), m, DoneFunc(func(_ *Message, err error) {
					defer wg.Done()
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						refused = append(refused, i)
						return
					}
					acked = append(acked, i)
				}))
			}
			wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			prod.Close(ctx)
			if fault.Hits() == 0 {
				t.Fatal("the broker refused nothing")
			}
			if (len(refused) > 0) != c.refused {
				t.Fatalf("%d writes came back refused; want some: %v", len(refused), c.refused)
			}
			for k := 1; k < len(acked); k++ {
				if acked[k] < acked[k-1] {
					t.Fatalf("write %d acknowledged after write %d", acked[k], acked[k-1])
				}
			}
			if !c.refused && len(acked) != n {
				t.Fatalf("%d of %d writes acknowledged", len(acked), n)
			}
			for k := 1; k < len(refused); k++ {
				if refused[k] < refused[k-1] {
					t.Fatalf("write %d refused after write %d: the guard could not keep their order", refused[k], refused[k-1])
				}
			}
			t.Logf("%d acknowledged, %d refused, %d produce requests refused", len(acked), len(refused), fault.Hits())
		})
	}
}

// Sinks of the same producer settings share one client; each one's Close waits for its
// writes, and the client closes with the last: a sink that closes first leaves the others
// writing.
func TestSharedProducer(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	f := &Franz{opts: []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}}
	cfg := ProducerConfig{Acks: "all", Compression: "none", Idempotent: true, MaxMessageBytes: 1 << 20}
	first, err := f.Producer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.Producer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.Producer(ProducerConfig{Acks: "leader", Compression: "none", MaxMessageBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if first.(*producerRef).sharedProducer != second.(*producerRef).sharedProducer {
		t.Fatal("two producers of the same settings have a client each")
	}
	if first.(*producerRef).sharedProducer == other.(*producerRef).sharedProducer {
		t.Fatal("producers of different settings share a client")
	}
	own := cfg
	own.Own = true
	dlq, err := f.Producer(own)
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close(context.Background())
	if _, shared := dlq.(*producerRef); shared {
		t.Fatal("a producer asked for as its own is shared")
	}
	write := func(p Producer, topic string) error {
		answered := make(chan error, 1)
		p.Produce(context.Background(), &Message{Topic: topic, Value: []byte("v")}, DoneFunc(func(_ *Message, err error) { answered <- err }))
		return <-answered
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := write(first, "a"); err != nil {
		t.Fatal(err)
	}
	first.Close(ctx)
	first.Close(ctx) // a second close of one holder does not close the client under the others
	if err := write(second, "b"); err != nil {
		t.Fatalf("after the first holder closed: %v", err)
	}
	second.Close(ctx)
	other.Close(ctx)
	if len(f.shared) != 0 {
		t.Fatalf("%d shared producers left after every holder closed", len(f.shared))
	}
}
