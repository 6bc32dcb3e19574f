package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/engine"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// BenchmarkEnrichHTTP5ms enriches records from a service that takes 5 ms per answer, with
// 64 workers and no cache: the lookups overlap, so the stage runs far faster than 200/s.
func BenchmarkEnrichHTTP5ms(b *testing.B) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // the service's latency, which the benchmark measures around
		fmt.Fprint(w, `{"tier": "gold"}`)
	}))
	defer svc.Close()
	const n = 20_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p, diags := pipeline.Parse("enrich.yaml", []byte(`version: 1
name: enrich
source: {type: kafka, topics: [in]}
stages:
  - {name: d, type: decode}
  - name: tier
    type: enrich
    workers: 64
    key: msg.id
    http: {url: '"`+svc.URL+`/tier?id=" + string(msg.id)', timeout: 1s, concurrency: 64, cache: {size: 0}}
    into: tier
sinks: [{name: o, type: kafka, topic: o}]
`), pipeline.Options{})
		if len(diags) > 0 {
			b.Fatal(diags.Err())
		}
		recs := make([]*record.Record, n)
		for j := range recs {
			recs[j] = &record.Record{Key: []byte(fmt.Sprint(j % 1000)), Value: []byte(fmt.Sprintf(`{"id": %d}`, j))}
		}
		out := &engine.MemorySinks{}
		e, err := engine.NewEngine(p, out.Open, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		if err := e.Run(context.Background(), &engine.MemorySource{Records: recs}, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		took := time.Since(began)
		b.StopTimer()
		if got := len(out.Records("o")); got != n {
			b.Fatalf("%d of %d records came out", got, n)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "records/s")
	}
}
