//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// dlq replay and tap on an exactly-once pipeline's DLQ on real Kafka: its partitions end
// with transaction markers and hold the copies of an aborted transaction beside the
// committed ones. Both read read_committed and end; the replay writes back the 5 committed
// records (not 11) and its group stands at the end of every partition.
func TestDLQReplayTransactional(t *testing.T) {
	file, topics, group := ordersFile(t, "txndlq", "  brokers: "+kafka.Real.Addr("plaintext")+"\n")
	group += "-dlq-replay"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kafka.ExactlyOnceDLQ(ctx, topics[3], topics[0]); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) string {
		t.Helper()
		p := testproc.Start(t, binary, strings.Join(args[:2], " "), nil, args...)
		if code := p.Wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("pythia-pipe %v: exit %d\n%s", args, code, p.Output())
		}
		return p.Output()
	}
	for _, c := range []struct {
		args []string
		want string
		n    int // records it would replay
	}{
		{[]string{"dlq", "replay", file, "--dry-run"}, "read 5, replayed 5;", 5},
		{[]string{"dlq", "replay", file, "--dry-run", "--read-uncommitted"}, "read 11, replayed 11;", 11},
	} {
		if out := cli(c.args...); !strings.Contains(out, c.want) || strings.Count(out, "would replay to "+topics[0]+"/") != c.n {
			t.Fatalf("%v:\n%s", c.args, out)
		}
	}
	if n := written(topics[0]); n != 0 {
		t.Fatalf("the dry runs wrote %d records to %s", n, topics[0])
	}
	if out := cli("tap", file, "dlq", "-n", "0"); strings.Count(out, topics[3]+"/") != 5 {
		t.Fatalf("tap, read_committed:\n%s", out)
	}
	if out := cli("tap", file, "dlq", "-n", "0", "--read-uncommitted"); strings.Count(out, topics[3]+"/") != 11 {
		t.Fatalf("tap --read-uncommitted:\n%s", out)
	}

	if out := cli("dlq", "replay", file); !strings.Contains(out, "read 5, replayed 5;") {
		t.Fatalf("replay:\n%s", out)
	}
	recs, err := kafka.Read(ctx, topics[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Headers["pythia.replayed"] != "1" || r.Headers["pythia.error"] != "" || r.Headers["trace"] != "t-"+string(r.Key[1:]) || r.Partition != int32(r.Key[1]-'0')%3 {
			t.Errorf("replayed %s to partition %d with headers %v", r.Key, r.Partition, r.Headers)
		}
	}
	if keys := devbroker.Keys(recs); keys != "c0,c1,c2,c3,c4" {
		t.Fatalf("%s holds %s, want c0..c4 once each", topics[0], keys)
	}
	committed, ends := kafka.Committed(group, topics[3]), kafka.EndOffsets(topics[3])
	for p, end := range ends {
		if committed[p] != end {
			t.Errorf("partition %d: %s committed %d, the DLQ ends at %d", p, group, committed[p], end)
		}
	}
	if out := cli("dlq", "replay", file); !strings.Contains(out, "read 0, replayed 0;") {
		t.Fatalf("a second replay read again what the first did:\n%s", out)
	}
}
