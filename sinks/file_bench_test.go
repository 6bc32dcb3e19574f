package sinks

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// BenchmarkFileSink measures what the fsync of each written batch costs: records/s written
// to a file in batches of 1, 64 (the most the source hands on at once) and 1024, synced or
// not, by one writer (a sink's) and by 4 at once (a DLQ written by several stage workers,
// which share syncs).
//
//	go test ./sinks -run '^$' -bench BenchmarkFileSink -benchtime 2s
func BenchmarkFileSink(b *testing.B) {
	for _, writers := range []int{1, 4} {
		for _, batch := range []int{1, 64, 1024} {
			for _, synced := range []bool{true, false} {
				name := fmt.Sprintf("writers=%d/batch=%d/sync=%v", writers, batch, synced)
				b.Run(name, func(b *testing.B) { benchFile(b, writers, batch, synced) })
			}
		}
	}
}

func benchFile(b *testing.B, writers, batch int, synced bool) {
	recs := make([]*record.Record, batch)
	for i := range recs {
		recs[i] = &record.Record{Key: fmt.Appendf(nil, "c%d", i%97),
			Value: fmt.Appendf(nil, `{"order_id":"o%d","customer_id":"c%d","amount":%d.5,"region":"eu","note":"n%d"}`, i, i%97, i%999, i)}
	}
	sk, err := (&fileSink{name: "out", path: filepath.Join(b.TempDir(), "out.jsonl")}).Open(Env{}, func(*record.Record, error) {})
	if err != nil {
		b.Fatal(err)
	}
	w := sk.(*fileWriter)
	var syncs atomic.Int64
	if doSync := w.sync; synced {
		w.sync = func() error { syncs.Add(1); return doSync() }
	} else {
		w.sync = nil
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				_ = w.Write(b.Context(), recs)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(syncs.Load())/float64(b.N), "syncs/write")
	if err := sk.Close(b.Context()); err != nil {
		b.Fatal(err)
	}
}
