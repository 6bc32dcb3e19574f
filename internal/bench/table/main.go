// Command table runs the orders benchmark and the hand-written loop, each in a process of its
// own (so that peak memory is each one's), and prints them side by side with their ratio; then
// their end-to-end latency at a steady 20,000 records a second. `make bench` runs it on the
// in-process broker, `BENCH_KAFKA=real make bench` on a real Kafka, where Kafka Streams doing
// the same work joins the throughput table (on the in-process broker the Go rows' peak RSS
// holds the broker's backlog and the JVM's would not).
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
	rows := []struct{ label, bench string }{
		{"pythia-pipe (pipelines/orders.yaml)", "BenchmarkOrdersPipeline"},
		{"hand-written sarama loop", "BenchmarkHandWrittenSarama"},
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
	fmt.Printf("\nbroker: %s; %d run(s) each, alternated (BENCH_RUNS): the median, and the range\n\n| | records/s | peak RSS |\n|---|---|---|\n", broker, runs)
	for i, r := range rows {
		fmt.Printf("| %s | %s | %s MB |\n", r.label, spread(results[i], "records/s"), spread(results[i], "peak-RSS-MB"))
	}
	ratios := make([]result, runs)
	for j := range ratios {
		ratios[j] = result{"ratio": results[0][j]["records/s"] / results[1][j]["records/s"]}
	}
	fmt.Printf("| ratio pythia-pipe / loop, run by run | %s× | |\n", spreadf(ratios, "ratio", "%.2f"))

	paced := []string{"BenchmarkLatencyPipeline", "BenchmarkLatencyHandWritten"}
	fmt.Printf("\nend to end at a steady 20,000 records/s (BENCH_RATE), after a warm-up:\n\n| | p50 | p99 |\n|---|---|---|\n")
	for i, bench := range paced {
		res, err := run(binary, bench)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", bench, err)
			os.Exit(1)
		}
		fmt.Printf("| %s | %.1f ms | %.1f ms |\n", rows[i].label, res["p50-ms"], res["p99-ms"])
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
