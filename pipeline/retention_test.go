package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// Records deleted from the log (by retention, or kafka-delete-records) before the pipeline read
// them are lost to it, but the partition must not stall: the error is logged, the group rejoins
// and the partition goes on from the log start.
func TestKafkaRecordsDeletedBeforeRead(t *testing.T) {
	const n, deleted = 20_000, 10_000
	b, err := devbroker.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateTopic("events", 1); err != nil {
		t.Fatal(err)
	}
	recs := make([]devbroker.Record, n)
	for i := range recs {
		recs[i] = devbroker.Record{Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	ctx := context.Background()
	if err := b.Produce(ctx, "events", recs); err != nil {
		t.Fatal(err)
	}
	// Small fetches and buffers: the consumer stays close behind the blocked pipeline, far
	// from the records that survive the deletion.
	p := mustParse(t, fmt.Sprintf(`version: 1
name: deleted
kafka: {brokers: %s}
source: {type: kafka, topics: [events], max_pending: 100, commit_interval: 100ms,
         fetch_default_bytes: 1KiB, channel_buffer_size: 16, session_timeout: 6s, heartbeat_interval: 500ms}
stages: [{name: d, type: decode}]
sinks: [{name: o, type: kafka, topic: events-out}]
`, strings.Join(b.Addrs(), ",")))
	base, err := p.Kafka.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	var logs testproc.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	src := sources.NewKafka(p.Source, p.Kafka.Brokers, sources.ConsumerConfig(base, p.Source), log)
	out := &gatedSinks{open: make(chan struct{})}
	e, err := NewEngine(p, out.Open, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx, src, 10*time.Second) }()

	waitFor(t, 30*time.Second, "the source to fill max_pending behind the closed sink", func() bool {
		return src.Stats().Pending >= 100
	})
	if err := b.DeleteRecords("events", 0, deleted); err != nil {
		t.Fatal(err)
	}
	close(out.open)
	waitFor(t, 60*time.Second, "the group to commit the end of events", func() bool { return b.CaughtUp("deleted", "events") })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `records were deleted from the log (by retention?) before they were read; they are lost to this group, and the partition resumes at start: earliest","group":"deleted","topic":"events","partition":0`) {
		t.Errorf("no log line says records were deleted before they were read:\n%s", logs.String())
	}
	seen := map[int]bool{}
	for _, r := range out.Records("o") {
		var v struct{ N int }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		seen[v.N] = true
	}
	for i := deleted; i < n; i++ {
		if !seen[i] {
			t.Fatalf("record %d, after the deleted ones, never reached the sink (%d records did)", i, len(seen))
		}
	}
}

// gatedSinks hold every write until open is closed.
type gatedSinks struct {
	MemorySinks
	open chan struct{}
}

func (g *gatedSinks) Open(name string, t sinks.Target, p sinks.Producer, report sinks.Report) (Sink, error) {
	inner, err := g.MemorySinks.Open(name, t, p, report)
	return &gatedSink{Sink: inner, open: g.open}, err
}

type gatedSink struct {
	Sink
	open chan struct{}
}

func (s *gatedSink) Write(ctx context.Context, recs []*record.Record) error {
	select {
	case <-s.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Sink.Write(ctx, recs)
}
