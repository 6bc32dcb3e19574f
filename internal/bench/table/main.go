// Command table runs the orders benchmark, the same on Avro, the hand-written loop and the
// orders example with delivery: exactly_once, each in a process of its own (so that peak
// memory is each one's), and prints them side by side with their CPU per record and their
// ratios; then the end-to-end latency of the JSON pipeline, the loop and the exactly-once
// pipeline (its outputs as a read_committed reader sees them) at a steady 20,000 records a
// second. `make bench` runs it on the in-process broker,
// `BENCH_KAFKA=real make bench` on a real Kafka, where Kafka Streams doing the same work joins
// the throughput table (on the in-process broker the Go rows' peak RSS holds the broker's
// backlog and the JVM's would not).
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// result is a benchmark's metrics by unit: records/s, peak-RSS-MB, p99-ms...
type result map[string]float64

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: table BENCH-TEST-BINARY")
		os.Exit(2)
	}
	const pipe, avro, loop, eos = 0, 1, 2, 3 // rows compared below
	rows := []struct{ label, bench string }{
		pipe: {"pythia-pipe (pipelines/orders.yaml)", "BenchmarkOrdersPipeline"},
		avro: {"pythia-pipe on Avro (pipelines/orders-avro.yaml)", "BenchmarkOrdersAvroPipeline"},
		loop: {"hand-written sarama loop", "BenchmarkHandWrittenSarama"},
		eos:  {"pythia-pipe, delivery: exactly_once", "BenchmarkOrdersExactlyOnce"},
	}
	if os.Getenv("BENCH_KAFKA") == "real" {
		rows = append(rows, struct{ label, bench string }{"Kafka Streams 4.1 (same topology, -Xmx512m)", "BenchmarkKafkaStreams"})
	}
	binary, err := filepath.Abs(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	runs := 1
	if n, err := strconv.Atoi(os.Getenv("BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	// Round after round, each peer once a round: the machine's moods fall on all of them.
	results := make([][]result, len(rows))
	for range runs {
		for i, r := range rows {
			res, err := run(binary, r.bench)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", r.bench, err)
				os.Exit(1)
			}
			results[i] = append(results[i], res)
		}
	}
	broker := "in-process (kfake; its backlog counts in peak RSS)"
	if os.Getenv("BENCH_KAFKA") == "real" {
		broker = "Apache Kafka (make kafka-up recipe)"
	}
	cpu := "CPU µs/record"
	if os.Getenv("BENCH_KAFKA") == "real" {
		cpu += " (+ the broker's)"
	}
	fmt.Printf("\nbroker: %s; %d run(s) each, alternated (BENCH_RUNS): the median, and the range\n\n| | records/s | %s | peak RSS |\n|---|---|---|---|\n", broker, runs, cpu)
	for i, r := range rows {
		cpu := spreadf(results[i], "cpu-µs/record", "%.1f")
		if results[i][0]["broker-cpu-µs/record"] > 0 {
			cpu += " + " + spreadf(results[i], "broker-cpu-µs/record", "%.1f")
		}
		fmt.Printf("| %s | %s | %s | %s MB |\n", r.label, spread(results[i], "records/s"), cpu, spread(results[i], "peak-RSS-MB"))
	}
	for _, c := range []struct {
		label string
		a, b  int
	}{{"ratio pythia-pipe / loop", pipe, loop}, {"ratio Avro / JSON pipeline", avro, pipe}, {"ratio exactly_once / at-least-once", eos, pipe}} {
		ratios := make([]result, runs)
		for j := range ratios {
			ratios[j] = result{"ratio": results[c.a][j]["records/s"] / results[c.b][j]["records/s"]}
		}
		fmt.Printf("| %s, run by run | %s× | | |\n", c.label, spreadf(ratios, "ratio", "%.2f"))
	}

	paced := []struct{ label, bench string }{{rows[pipe].label, "BenchmarkLatencyPipeline"}, {rows[loop].label, "BenchmarkLatencyHandWritten"},
		{rows[eos].label + " (read_committed)", "BenchmarkLatencyExactlyOnce"}}
	fmt.Printf("\nend to end at a steady 20,000 records/s (BENCH_RATE), after a warm-up:\n\n| | p50 | p99 |\n|---|---|---|\n")
	for _, p := range paced {
		res, err := run(binary, p.bench)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", p.bench, err)
			os.Exit(1)
		}
		fmt.Printf("| %s | %.1f ms | %.1f ms |\n", p.label, res["p50-ms"], res["p99-ms"])
	}
}

// run runs one benchmark once in its own process and reads its metrics.
func run(binary, bench string) (result, error) {
	cmd := exec.Command(binary, "-test.run", "^$", "-test.bench", "^"+bench+"$", "-test.benchtime", "1x") // #nosec G204 -- the Makefile's own test binary
	cmd.Dir = "internal/bench"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%v\n%s", err, out.String())
	}
	res := result{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], bench) {
			continue
		}
		for j := 1; j+1 < len(f); j++ {
			if v, err := strconv.ParseFloat(f[j], 64); err == nil {
				res[f[j+1]] = v
			}
		}
	}
	if res["records/s"] == 0 {
		return res, fmt.Errorf("no records/s in its output:\n%s", out.String())
	}
	return res, nil
}

// spread is the median of unit over results, and their range when there are several.
func spread(results []result, unit string) string { return spreadf(results, unit, "%.0f") }

func spreadf(results []result, unit, format string) string {
	vs := make([]float64, len(results))
	for i, r := range results {
		vs[i] = r[unit]
	}
	slices.Sort(vs)
	median := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		median = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	if len(vs) == 1 {
		return fmt.Sprintf(format, median)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", median, vs[0], vs[len(vs)-1])
}
