package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/atleastonce"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// Records deleted from the log (by retention, or kafka-delete-records) before the pipeline read
// them are lost to it, but the partition must not stall: the error is logged, the group rejoins
// and the partition goes on from the log start.
func TestKafkaRecordsDeletedWhileRunning(t *testing.T) {
	const n, deleted = 20_000, 10_000
	b := brokerWithEvents(t, map[string]int{"events": n})
	// Small fetches and buffers: the consumer stays close behind the blocked pipeline, far
	// from the records that survive the deletion.
	gate := make(chan struct{})
	out := gatedSinks(gate)
	r := runLogged(t, b, "events", "max_pending: 100, fetch_default_bytes: 1KiB, channel_buffer_size: 16", out.Open)
	waitFor(t, 30*time.Second, "the source to fill max_pending behind the closed sink", func() bool {
		return r.src.Stats().Pending >= 100
	})
	if err := b.DeleteRecords("events", 0, deleted); err != nil {
		t.Fatal(err)
	}
	close(gate)
	r.finish(t, "events")
	r.expectLog(t, `records were deleted from the log (by retention?) before they were read; they are lost to this group, and the partition resumes at start: earliest","group":"deleted","topic":"events","partition":0`)
	expectValues(t, &out.MemorySinks, deleted, n)
}

// A group whose committed offset was deleted while it was away starts at `start`, and says
// that records were lost; a partition with nothing committed starts there silently.
func TestKafkaCommittedOffsetDeleted(t *testing.T) {
	const n, committed, deleted = 2000, 500, 1000
	b := brokerWithEvents(t, map[string]int{"events": n, "fresh": 10})
	if err := b.Commit("deleted", "events", map[int32]int64{0: committed}); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteRecords("events", 0, deleted); err != nil {
		t.Fatal(err)
	}
	out := &MemorySinks{}
	r := runLogged(t, b, "[events, fresh]", "", out.Open)
	r.finish(t, "events", "fresh")
	r.expectLog(t, fmt.Sprintf(`"level":"ERROR","msg":"the committed offset is no longer in the log (records deleted by retention before they were read, or the topic recreated?): the records between are lost to this group; starting at start: earliest","topic":"events","partition":0,"group":"deleted","committed":%d,"log_start":%d,"log_end":%d`, committed, deleted, n))
	if strings.Count(r.logs.String(), "no longer in the log") != 1 {
		t.Errorf("the partition with nothing committed was reported too:\n%s", r.logs.String())
	}
	expectValues(t, out, deleted, n)
}

// brokerWithEvents starts a broker with one-partition topics, each holding records {"n":0}…
// in batches of a few records: a fetch, which returns at least one whole batch, stays small.
func brokerWithEvents(t *testing.T, topics map[string]int) *devbroker.Broker {
	t.Helper()
	var names []string
	for topic := range topics {
		names = append(names, topic)
	}
	b := startBroker(t, 1, names...)
	for topic, n := range topics {
		recs := make([]devbroker.Record, n)
		for i := range recs {
			recs[i] = devbroker.Record{Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}
		}
		if err := b.Produce(context.Background(), topic, recs, kgo.ProducerBatchMaxBytes(512)); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

type loggedRun struct {
	b    *devbroker.Broker
	src  *atleastonce.Source
	logs *testproc.Buffer
	stop context.CancelFunc
	done chan error
}

// runLogged runs a decode-only pipeline of group "deleted" over topics, logging to a buffer.
func runLogged(t *testing.T, b *devbroker.Broker, topics, sourceFields string, open OpenSink) *loggedRun {
	t.Helper()
	if sourceFields != "" {
		sourceFields = ", " + sourceFields
	}
	p := mustParse(t, fmt.Sprintf(`version: 1
name: deleted
kafka: {brokers: %s}
source: {type: kafka, topics: %s, commit_interval: 100ms%s}
stages: [{name: d, type: decode}]
sinks: [{name: o, type: kafka, topic: out}]
`, strings.Join(b.Addrs(), ","), topics, sourceFields))
	r := &loggedRun{b: b, logs: &testproc.Buffer{}, done: make(chan error, 1)}
	log := slog.New(slog.NewJSONHandler(r.logs, nil))
	r.src = newSource(t, p, log)
	e, err := NewEngine(p, open, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	t.Cleanup(stop)
	go func() { r.done <- e.Run(ctx, r.src, 10*time.Second) }()
	return r
}

// finish waits for the group to commit the end of the topics, then stops the run.
func (r *loggedRun) finish(t *testing.T, topics ...string) {
	t.Helper()
	for _, topic := range topics {
		waitFor(t, 60*time.Second, "the group to commit the end of "+topic, func() bool { return r.b.CaughtUp("deleted", topic) })
	}
	r.stop()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
}

func (r *loggedRun) expectLog(t *testing.T, want string) {
	t.Helper()
	if !strings.Contains(r.logs.String(), want) {
		t.Errorf("no log line holds %s:\n%s", want, r.logs.String())
	}
}

// expectValues checks that sink o received every record {"n":from} to {"n":to-1}.
func expectValues(t *testing.T, out *MemorySinks, from, to int) {
	t.Helper()
	seen := map[int]bool{}
	for _, r := range out.Records("o") {
		var v struct{ N int }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		seen[v.N] = true
	}
	for i := from; i < to; i++ {
		if !seen[i] {
			t.Fatalf("record %d, after the deleted ones, never reached the sink (%d records did)", i, len(seen))
		}
	}
}
