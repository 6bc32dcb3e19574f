package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/devkit/devregistry"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/registry"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

// BenchmarkOrdersAvroPipeline runs pipelines/orders-avro.yaml over the backlog written in
// Avro framed for a schema registry: the orders of the JSON benchmark's mix (a tenth not
// framed, for the DLQ; a tenth of amount 0, filtered out; a tenth big), decoded with
// schemas/order.avsc (each record's writer schema by its id), filtered, reshaped by a map and
// written with schemas/order-total.avsc. The registry is franz-go's srfake in process, or a
// real Apicurio Registry with BENCH_KAFKA=real (the one of `make registry-up` when it
// answers). Beside BenchmarkOrdersPipeline it is the price of Avro: the same records, the
// same stages but the branch (one sink for every order).
func BenchmarkOrdersAvroPipeline(b *testing.B) {
	n := backlog()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br, p, bytes, done := setupAvro(b, n)
		defer done()
		report(b, n, runPipeline(b, br, p, "orders-avro"))
		b.ReportMetric(float64(bytes)/float64(n), "avro-B/record")
		out, dlq := sum(br.EndOffsets("orders-avro-out")), sum(br.EndOffsets("orders-avro-dlq"))
		if want := int64(n - (n+9)/10 - (n+8)/10); out != want || dlq != int64((n+9)/10) {
			b.Fatalf("orders-avro-out holds %d records, orders-avro-dlq %d; want %d and %d", out, dlq, want, (n+9)/10)
		}
	}
}

// setupAvro starts a broker and a registry, the pipeline on them, and writes the backlog to
// orders-avro, framed for the registry; the sink's schema is registered ahead. It returns the
// bytes of the backlog's values and what stops the broker and the registry.
func setupAvro(b *testing.B, n int) (*devbroker.Broker, *pipeline.Pipeline, int64, func()) {
	br := startBroker(b)
	for _, topic := range []string{"orders-avro", "orders-avro-out", "orders-avro-dlq"} {
		if err := br.CreateTopic(topic, partitions()); err != nil {
			b.Fatal(err)
		}
	}
	opts, url, stopRegistry := benchRegistry(b)
	done := func() { br.Close(); stopRegistry() }
	p := avroPipeline(b, br, opts, url)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, s := range p.Sinks {
		if sh, ok := s.Impl.(sinks.SchemaHolder); ok {
			if subject, schema, ok := sh.BodySchema().Local(); ok {
				if _, err := p.RegistryClient.Register(ctx, subject, schema); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	framer := devregistry.FramerOf(p) // writes JSON objects as the decode stage reads them
	var bytes int64
	for from := 0; from < n; from += feedChunk {
		recs := avroFeed(from, min(from+feedChunk, n), recordBytes())
		for i := range recs {
			v, _, err := framer.Frame(ctx, recs[i].Value) // bad JSON stays as it is: not framed
			if err != nil {
				b.Fatal(err)
			}
			recs[i].Value = v
			bytes += int64(len(v))
		}
		if err := br.Produce(ctx, "orders-avro", recs); err != nil {
			b.Fatal(err)
		}
	}
	resetPeakRSS()
	return br, p, bytes, done
}

// benchRegistry is srfake in process, or with BENCH_KAFKA=real a real Apicurio Registry: the
// pipeline's registry options, its URL, and what stops it.
func benchRegistry(b *testing.B) (schemareg.Options, string, func()) {
	if os.Getenv("BENCH_KAFKA") != "real" {
		return devregistry.New().Options(), "http://in-process-registry", func() {}
	}
	r, err := registry.Use(registry.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return schemareg.Options{}, r.URL, r.Close
}

// avroPipeline is pipelines/orders-avro.yaml on br and the registry.
func avroPipeline(b *testing.B, br *devbroker.Broker, opts schemareg.Options, url string) *pipeline.Pipeline {
	src, err := os.ReadFile("../../pipelines/orders-avro.yaml")
	if err != nil {
		b.Fatal(err)
	}
	env := func(k string) (string, bool) {
		switch k {
		case "KAFKA_BROKERS":
			return strings.Join(br.Addrs(), ","), true
		case "SCHEMA_REGISTRY_URL":
			return url, true
		}
		return "", false
	}
	p, diags := pipeline.Parse("orders-avro.yaml", src, pipeline.Options{Env: env, BaseDir: "../../pipelines", Registry: opts})
	if len(diags) > 0 {
		b.Fatal(diags.Err())
	}
	p.KafkaSource().CommitInterval = commitInterval
	return p
}

// avroFeed is records from..to-1 of the backlog as JSON objects of schemas/order.avsc (region
// an enum, amount a decimal, a timestamp), each padded by its note to size bytes of JSON,
// keyed as ordersFeed's; a tenth are bad JSON, for the DLQ.
func avroFeed(from, to, size int) []devbroker.Record {
	recs := make([]devbroker.Record, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		customer := fmt.Sprintf("c%d", i%10007)
		at := time.UnixMilli(1700000000000 + int64(i))
		placed := at.UTC().Format(time.RFC3339Nano)
		var body string
		switch i % 10 {
		case 0:
			body = fmt.Sprintf(`{"order_id":"o%d","amount": }`, i)
		case 1:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"%s","amount":"0.00","region":"EU","placed_at":"%s"}`, i, customer, placed)
		case 2:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"%s","amount":"1500.50","region":"US","placed_at":"%s","note":"%%s"}`, i, customer, placed)
		default:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"%s","amount":"%d.50","region":"EU","placed_at":"%s","note":"%%s"}`, i, customer, i%999, placed)
		}
		if strings.Contains(body, "%s") {
			body = fmt.Sprintf(body, note(i, max(size-len(body)+2, 1)))
		}
		recs = append(recs, devbroker.Record{Key: []byte(customer), Value: []byte(body),
			Headers: map[string]string{"seq": fmt.Sprint(i)}, Timestamp: at})
	}
	return recs
}

func sum(offsets map[int32]int64) int64 {
	var n int64
	for _, o := range offsets {
		n += o
	}
	return n
}
