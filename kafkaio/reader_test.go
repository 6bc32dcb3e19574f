package kafkaio

import (
	"context"
	"errors"
	"io"
	"maps"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

// dlqAdmin is an admin on a broker whose topic dlq holds devbroker.ExactlyOnceDLQ: 11
// records, 5 of them committed, every partition ending with a transaction marker.
func dlqAdmin(t *testing.T) (*devbroker.Broker, *Admin) {
	t.Helper()
	b := startBroker(t, []kafkaconn.Topic{{Name: "dlq", Partitions: 3}, {Name: "orders", Partitions: 3}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.ExactlyOnceDLQ(ctx, "dlq", "orders"); err != nil {
		t.Fatal(err)
	}
	return b, newAdmin(t, &kafkaconn.Config{Brokers: b.Addrs()})
}

// openReader opens a reader of the backlog of dlq (read_committed or not) as how says,
// closed when the test ends.
func openReader(t *testing.T, ctx context.Context, a *Admin, readCommitted bool, how func(*Backlog) Reading) (*Backlog, *Reader) {
	t.Helper()
	b, err := a.Backlog(ctx, readCommitted, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := a.Reader(b, how(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rd.Close)
	return b, rd
}

// readAll reads rd to its end: the records (markers left out), and how many markers came.
func readAll(t *testing.T, ctx context.Context, rd *Reader, each func(*Message)) (recs []*Message, markers int) {
	t.Helper()
	for {
		m, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			return recs, markers
		}
		if err != nil {
			t.Fatalf("after %d records: %v", len(recs), err)
		}
		if each != nil {
			each(m)
		}
		if m.Control {
			markers++
			continue
		}
		recs = append(recs, m)
	}
}

// A reader ends at the backlog's end for its isolation level, although every partition
// ends with a transaction marker; a partition may be left before.
func TestReaderEnds(t *testing.T) {
	_, a := dlqAdmin(t)
	cases := []struct {
		name          string
		readCommitted bool
		leaveAfter    int // records of a partition before it is left; 0: none
		want          int
	}{
		{"read_committed", true, 0, 5},
		{"read_uncommitted", false, 0, 11},
		{"each partition left after its first record", false, 1, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b, rd := openReader(t, ctx, a, c.readCommitted, func(b *Backlog) Reading { return Reading{From: b.Start} })
			seen := map[int32]int{}
			recs, markers := readAll(t, ctx, rd, func(m *Message) {
				if m.Control {
					return
				}
				if seen[m.Partition]++; seen[m.Partition] == c.leaveAfter {
					rd.Leave(m.Topic, m.Partition)
				}
			})
			if len(recs) != c.want {
				t.Fatalf("%d records, want %d", len(recs), c.want)
			}
			if c.leaveAfter == 0 && markers == 0 {
				t.Fatal("no transaction marker came")
			}
			for _, m := range recs {
				if m.Offset >= b.End["dlq"][m.Partition] {
					t.Fatalf("%s/%d@%d is past the end %d", m.Topic, m.Partition, m.Offset, b.End["dlq"][m.Partition])
				}
			}
		})
	}
}

// Following, a reader goes on past the backlog's end.
func TestReaderFollows(t *testing.T) {
	br, a := dlqAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, rd := openReader(t, ctx, a, true, func(b *Backlog) Reading { return Reading{From: b.End, Follow: true} })
	if err := br.Produce(ctx, "dlq", []devbroker.Record{{Key: []byte("later"), Value: []byte("v"), Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := rd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Control {
			if string(m.Key) != "later" {
				t.Fatalf("read %s, want the record written after the backlog", m.Key)
			}
			return
		}
	}
}

// As a group, what is marked is committed, markers included: the group stands at the
// backlog's end.
func TestReaderGroup(t *testing.T) {
	br, a := dlqAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, rd := openReader(t, ctx, a, true, func(b *Backlog) Reading { return Reading{From: b.Start, Group: "replay", PollMax: 2} })
	recs, _ := readAll(t, ctx, rd, rd.Mark)
	if len(recs) != 5 {
		t.Fatalf("%d records, want 5", len(recs))
	}
	if err := rd.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := br.Committed("replay", "dlq"); !maps.Equal(got, b.End["dlq"]) {
		t.Fatalf("committed %v, want the ends %v", got, b.End["dlq"])
	}
}

// A write is acknowledged in the partition it names, as it was given; a topic that does not
// exist is refused.
func TestWriter(t *testing.T) {
	br := startBroker(t, []kafkaconn.Topic{{Name: "out", Partitions: 3}})
	a := newAdmin(t, &kafkaconn.Config{Brokers: br.Addrs()})
	w, err := a.Writer()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := w.Write(ctx, &Message{Topic: "out", Partition: 2, Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "h", Value: []byte("x")}}, Timestamp: at}); err != nil {
		t.Fatal(err)
	}
	got, err := br.Read(ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Partition != 2 || string(got[0].Key) != "k" || string(got[0].Value) != "v" || got[0].Headers["h"] != "x" || !got[0].Timestamp.Equal(at) {
		t.Fatalf("read back %+v", got)
	}
	if err := w.Write(ctx, &Message{Topic: "missing", Value: []byte("v")}); err == nil {
		t.Fatal("a write to a topic that does not exist was acknowledged")
	}
}
