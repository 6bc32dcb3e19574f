package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// BenchmarkLargeRecords shows the byte budget at work: a backlog of 1 MB records
// (BENCH_LARGE_GB gigabytes of them, default 1), in 8 partitions, read with the default
// source settings by a pipeline that passes them to a file sink writing to /dev/null. It
// reports the peak RSS beside what the settings allow: max_pending_bytes plus a fetch. Run it
// on a real broker (BENCH_KAFKA=real): in process, the broker's copy of the backlog is in the
// same process.
func BenchmarkLargeRecords(b *testing.B) {
	const recordBytes = 1_000_000
	n := envInt("BENCH_LARGE_GB", 1) * 1000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := startBroker(b)
		defer br.Close()
		if err := br.CreateTopic("large", 8); err != nil {
			b.Fatal(err)
		}
		value := make([]byte, recordBytes)
		for from := 0; from < n; from += 100 { // 100 MB at a time: the feed is not the pipeline's memory
			recs := make([]devbroker.Record, 0, 100)
			for j := from; j < min(from+100, n); j++ {
				for k := range value {
					value[k] = byte(rand.Uint32()) // incompressible: the log holds what the pipeline reads
				}
				recs = append(recs, devbroker.Record{Key: []byte(fmt.Sprint(j)), Value: append([]byte(nil), value...)})
			}
			if err := br.Produce(context.Background(), "large", recs); err != nil {
				b.Fatal(err)
			}
		}
		resetPeakRSS()
		src := fmt.Sprintf(`version: 1
name: large
kafka: {brokers: %s}
source: {type: kafka, topics: [large]}
stages: [{name: pass, type: filter, when: "true"}]
sinks: [{name: out, type: file, path: /dev/null, encode: bytes}]
dlq: {type: file, path: /dev/null}
`, strings.Join(br.Addrs(), ","))
		p, diags := pipeline.Parse("large.yaml", []byte(src), pipeline.Options{})
		if len(diags) > 0 {
			b.Fatal(diags.Err())
		}
		took := runPipeline(b, br, p, "large")
		report(b, n, took)
		b.ReportMetric(float64(n)*recordBytes/1e6/took.wall.Seconds(), "MB/s")
		cfg := p.KafkaSource()
		b.ReportMetric(float64(cfg.MaxPendingBytes+cfg.FetchMaxBytes)/(1<<20), "budget+fetch-MiB")
	}
}
