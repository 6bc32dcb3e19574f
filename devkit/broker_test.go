package devkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// started is an in-process broker with topic, closed when the test ends.
func started(t *testing.T, topic string, partitions int32) *Broker {
	t.Helper()
	b, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.CreateTopic(topic, partitions); err != nil {
		t.Fatal(err)
	}
	return b
}

// offsetsOnly is an Admin that knows offsets and creates nothing.
type offsetsOnly struct{ ends, committed map[int32]int64 }

func (offsetsOnly) CreateTopic(string, int32, map[string]string) error { return nil }
func (offsetsOnly) StartOffsets(string) map[int32]int64                { return map[int32]int64{} }
func (a offsetsOnly) EndOffsets(string) map[int32]int64                { return a.ends }
func (a offsetsOnly) StableOffsets(string) map[int32]int64             { return a.ends }
func (a offsetsOnly) Committed(string, string) map[int32]int64         { return a.committed }

// dev stops once its group has committed the end of every partition that has records; what
// lies past its commits is unfinished.
func TestCaughtUp(t *testing.T) {
	cases := []struct {
		name            string
		ends, committed map[int32]int64
		want            bool
		unfinished      int64
	}{
		{"every partition committed to its end", map[int32]int64{0: 3, 1: 5}, map[int32]int64{0: 3, 1: 5}, true, 0},
		{"one partition behind", map[int32]int64{0: 3, 1: 5}, map[int32]int64{0: 3, 1: 4}, false, 1},
		{"one partition never committed", map[int32]int64{0: 3, 1: 5}, map[int32]int64{0: 3}, false, 5},
		{"an empty partition needs no commit", map[int32]int64{0: 3, 1: 0}, map[int32]int64{0: 3}, true, 0},
		{"an empty topic", map[int32]int64{}, nil, true, 0},
		{"the broker gave no end for a committed partition", map[int32]int64{0: 3}, map[int32]int64{0: 3, 1: 5}, false, 1},
		{"the broker gave no end at all", map[int32]int64{}, map[int32]int64{0: 3}, false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := Attach([]string{"127.0.0.1:9"}, offsetsOnly{c.ends, c.committed})
			if got := b.CaughtUp("g", "t"); got != c.want {
				t.Fatalf("caught up %v, want %v", got, c.want)
			}
			if got := b.Unfinished("g", "t"); got != c.unfinished {
				t.Fatalf("%d unfinished, want %d", got, c.unfinished)
			}
		})
	}
}

// Read reads as the pipeline's consumers do, read_committed: an aborted transaction's records
// are left out, and it ends although a transaction marker stands last in a partition.
func TestReadCommitted(t *testing.T) {
	b := started(t, "t", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Produce(ctx, "t", []Record{{Key: []byte("plain"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	cl, err := b.Client(kgo.TransactionalID("devkit-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, commit := range []bool{false, true, false} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			r := Record{Key: []byte("aborted"), Partition: p}
			if commit {
				r.Key = []byte("committed")
			}
			if err := cl.ProduceSync(ctx, r.KgoRecord("t")).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	var got []Record
	for deadline := time.Now().Add(10 * time.Second); len(got) < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, err = b.Read(ctx, "t"); err != nil { // the last markers may not be written yet: read again
			t.Fatal(err)
		}
	}
	keys := map[string]int{}
	for _, r := range got {
		keys[string(r.Key)]++
	}
	if len(got) != 3 || keys["plain"] != 1 || keys["committed"] != 2 {
		t.Fatalf("read %d records %v; want plain once and committed twice, nothing aborted", len(got), keys)
	}

}

// A group that read and committed every record of a topic has caught up; dev waits for
// that. Creating a topic that exists is no error: dev creates the pipeline's topics.
func TestCaughtUpInProcess(t *testing.T) {
	b := started(t, "src", 3)
	if err := b.CreateTopic("src", 3); err != nil {
		t.Fatalf("creating a topic that exists: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := make([]Record, 10)
	for i := range recs {
		recs[i] = Record{Key: []byte{byte('a' + i)}, Value: []byte("v")}
	}
	if err := b.Produce(ctx, "src", recs); err != nil {
		t.Fatal(err)
	}
	if b.CaughtUp("g", "src") {
		t.Fatal("caught up before the group read anything")
	}
	group, err := b.Client(kgo.ConsumerGroup("g"), kgo.ConsumeTopics("src"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	for seen := 0; seen < len(recs); {
		fs := group.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the group read %d of %d records", seen, len(recs))
		}
		seen += fs.NumRecords()
	}
	if err := group.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.CaughtUp("g", "src") {
		t.Fatalf("not caught up: committed %v, ends %v", b.Committed("g", "src"), b.EndOffsets("src"))
	}
}
