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
	results := make([]result, len(rows))
	for i, r := range rows {
		if results[i], err = run(binary, r.bench); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", r.bench, err)
			os.Exit(1)
		}
	}
	broker := "in-process (kfake; its backlog counts in peak RSS)"
	if os.Getenv("BENCH_KAFKA") == "real" {
		broker = "Apache Kafka (make kafka-up recipe)"
	}
	fmt.Printf("\nbroker: %s\n\n| | records/s | peak RSS |\n|---|---|---|\n", broker)
	for i, r := range rows {
		fmt.Printf("| %s | %.0f | %.0f MB |\n", r.label, results[i]["records/s"], results[i]["peak-RSS-MB"])
	}
	fmt.Printf("| ratio pythia-pipe / loop | %.2f× | |\n", results[0]["records/s"]/results[1]["records/s"])

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
