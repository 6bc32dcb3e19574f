// Command table runs the orders benchmark, the same on Avro, the hand-written sarama and
// franz-go loops and the orders example with delivery: exactly_once, each in a process of its
// own (so that peak memory is each one's; on a real Kafka `pythia-pipe run` too, in both
// modes, measured as a user's process), and prints them side by side with their CPU per
// record (on a real Kafka the broker's apart), then their ratios run by run (each mode of
// pythia-pipe against the franz-go loop, the sarama loop, each other); then the end-to-end
// latency of the JSON pipeline, both loops and the exactly-once pipeline (its outputs as a
// read_committed reader sees them) at a steady 20,000 records a second. `make bench` runs it
// on the in-process broker, `BENCH_KAFKA=real make bench` on a real Kafka, where Kafka Streams
// doing the same work joins the throughput table (on the in-process broker the Go rows' peak
// RSS holds the broker's backlog and the JVM's would not). BENCH_TABLES=state runs the stateful
// stages instead (dedupe and a windowed aggregate beside Kafka Streams, their latency and the
// dedupe's restore; BENCH_AGG_RECORDS, BENCH_AGG_SECONDS, BENCH_KEYS, BENCH_RESTORE=0);
// BENCH_TABLES=orders,state both.
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

// peer is a row of a table: its label, and the benchmark that measures it.
type peer struct{ label, bench string }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: table BENCH-TEST-BINARY")
		os.Exit(2)
	}
	realKafka := os.Getenv("BENCH_KAFKA") == "real"
	binary, err := filepath.Abs(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	runs := 1
	if n, err := strconv.Atoi(os.Getenv("BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	tables := os.Getenv("BENCH_TABLES")
	if tables == "" {
		tables = "orders"
	}
	for _, t := range strings.Split(tables, ",") {
		switch t {
		case "orders":
			ordersTables(binary, runs, realKafka)
		case "state":
			stateTables(binary, runs, realKafka)
		default:
			fmt.Fprintf(os.Stderr, "BENCH_TABLES: %q is not orders or state\n", t)
			os.Exit(2)
		}
	}
}

// ordersTables runs the orders example and its peers and prints their tables.
func ordersTables(binary string, runs int, realKafka bool) {
	const pipe, avro, sarama, franz, eos = 0, 1, 2, 3, 4 // rows compared below
	rows := []peer{
		pipe:   {"pythia-pipe (pipelines/orders.yaml)", "BenchmarkOrdersPipeline"},
		avro:   {"pythia-pipe on Avro (pipelines/orders-avro.yaml)", "BenchmarkOrdersAvroPipeline"},
		sarama: {"hand-written sarama loop", "BenchmarkHandWrittenSarama"},
		franz:  {"hand-written franz-go loop", "BenchmarkHandWrittenFranz"},
		eos:    {"pythia-pipe, delivery: exactly_once", "BenchmarkOrdersExactlyOnce"},
	}
	const run, runEOS = 5, 6 // on a real Kafka: pythia-pipe run in a process of its own
	if realKafka {
		rows = append(rows, peer{"pythia-pipe run pipelines/orders.yaml, its own process", "BenchmarkOrdersRun"},
			peer{"pythia-pipe run, delivery: exactly_once, its own process", "BenchmarkOrdersRunExactlyOnce"},
			peer{"Kafka Streams 4.1 (same topology, -Xmx512m)", "BenchmarkKafkaStreams"})
	}
	results := rounds(binary, rows, runs)
	// The CPU a record costs, the process's and (on a real Kafka, which shares the machine)
	// the broker's apart: throughput is the cores divided by their sum.
	cols := []struct{ unit, title, format string }{{"records/s", "records/s", "%.0f"}, {"cpu-µs/record", "CPU µs/record", "%.1f"}}
	broker := "in-process (kfake: its CPU and its backlog count in the process's)"
	if realKafka {
		cols = append(cols, struct{ unit, title, format string }{"broker-cpu-µs/record", "the broker's CPU µs/record", "%.1f"})
		broker = "Apache Kafka (make kafka-up recipe)"
	}
	titles := []string{""}
	for _, c := range cols {
		titles = append(titles, c.title)
	}
	fmt.Printf("\nbroker: %s; %d run(s) each, alternated (BENCH_RUNS): the median, and the range\n\n", broker, runs)
	printHeader(append(titles, "peak RSS", "of it, mapped files"))
	for i, r := range rows {
		fmt.Printf("| %s |", r.label)
		for _, c := range cols {
			fmt.Printf(" %s |", spreadf(results[i], c.unit, c.format))
		}
		fmt.Printf(" %s MB | %s |\n", spread(results[i], "peak-RSS-MB"), fileRSS(results[i]))
	}
	fmt.Printf("\nmapped files: of the RSS at a run's end, the files mapped from the page cache (the binary's code and data)\n")

	// Ratios of the same round's runs, so that a round's mood cancels out.
	fmt.Printf("\nratios, run by run: the median, and the range\n\n")
	printHeader(titles)
	type ratio struct {
		label string
		a, b  int
	}
	ratios := []ratio{{"at-least-once / franz-go loop", pipe, franz}, {"exactly-once / franz-go loop", eos, franz},
		{"at-least-once / sarama loop", pipe, sarama}, {"exactly-once / at-least-once", eos, pipe}, {"Avro / JSON pipeline", avro, pipe}}
	if realKafka {
		ratios = append(ratios, ratio{"run, at-least-once / franz-go loop", run, franz}, ratio{"run, exactly-once / franz-go loop", runEOS, franz})
	}
	for _, c := range ratios {
		fmt.Printf("| %s |", c.label)
		for _, col := range cols {
			byRun := make([]result, runs)
			for j := range byRun {
				byRun[j] = result{col.unit: results[c.a][j][col.unit] / results[c.b][j][col.unit]}
			}
			fmt.Printf(" %s× |", spreadf(byRun, col.unit, "%.2f"))
		}
		fmt.Println()
	}

	paced := []peer{{rows[pipe].label, "BenchmarkLatencyPipeline"},
		{rows[sarama].label, "BenchmarkLatencyHandWrittenSarama"}, {rows[franz].label, "BenchmarkLatencyHandWrittenFranz"},
		{rows[eos].label + " (read_committed)", "BenchmarkLatencyExactlyOnce"}}
	latencies := rounds(binary, paced, runs)
	fmt.Printf("\nend to end at a steady 20,000 records/s (BENCH_RATE), after a warm-up; %d run(s) each, alternated: the median, and the range\n\n| | p50 | p99 |\n|---|---|---|\n", runs)
	for i, p := range paced {
		fmt.Printf("| %s | %s ms | %s ms |\n", p.label, spreadf(latencies[i], "p50-ms", "%.1f"), spreadf(latencies[i], "p99-ms", "%.1f"))
	}
}

// fileRSS is how much of a process's resident memory at its end was files mapped from the
// page cache (file-RSS-MB): its binary's code and data, the JVM's libraries. Shared, and as
// large as the kernel maps it.
func fileRSS(results []result) string { return spread(results, "file-RSS-MB") + " MB" }

// rounds runs each benchmark runs times, round after round, each once a round (the machine's
// moods fall on all of them), and returns each one's results in the order of its rounds.
func rounds(binary string, peers []peer, runs int) [][]result {
	results := make([][]result, len(peers))
	for range runs {
		for i, p := range peers {
			results[i] = append(results[i], mustRun(binary, p.bench))
		}
	}
	return results
}

// printHeader prints a Markdown table's header of titles.
func printHeader(titles []string) {
	fmt.Printf("|%s|\n|%s\n", strings.Join(titles, " | ")+" ", strings.Repeat("---|", len(titles)))
}

// mustRun is run, exiting when the benchmark fails.
func mustRun(binary, bench string) result {
	res, err := run(binary, bench)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", bench, err)
		os.Exit(1)
	}
	return res
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

// stateTables runs the stateful stages (dedupe, aggregate) beside Kafka Streams doing the same
// (on a real Kafka, or with BENCH_STREAMS=1 in process too), their latency at a steady rate,
// and the dedupe's restore, and prints their tables.
func stateTables(binary string, runs int, realKafka bool) {
	streams := realKafka || os.Getenv("BENCH_STREAMS") == "1"
	const dedupe, aggregate, dedupeStreams, aggregateStreams = 0, 1, 2, 3
	rows := []peer{
		dedupe:    {"pythia-pipe dedupe (testdata/dedupe.yaml)", "BenchmarkDedupePipeline"},
		aggregate: {"pythia-pipe aggregate (testdata/aggregate.yaml)", "BenchmarkAggregatePipeline"},
	}
	if streams {
		rows = append(rows, peer{"Kafka Streams 4.1 dedupe (window store, -Xmx512m)", "BenchmarkDedupeStreams"},
			peer{"Kafka Streams 4.1 aggregate (onWindowClose, -Xmx512m)", "BenchmarkAggregateStreams"})
	}
	results := rounds(binary, rows, runs)
	cols := []struct{ unit, title, format string }{{"records/s", "records/s", "%.0f"}, {"cpu-µs/record", "CPU µs/record", "%.1f"}}
	broker := "in-process (kfake: its CPU and its backlog count in the process's; not in the JVM's)"
	if realKafka {
		cols = append(cols, struct{ unit, title, format string }{"broker-cpu-µs/record", "the broker's CPU µs/record", "%.1f"})
		broker = "Apache Kafka (make kafka-up recipe)"
	}
	titles := []string{""}
	for _, c := range cols {
		titles = append(titles, c.title)
	}
	fmt.Printf("\nstateful stages; broker: %s; %d run(s) each, alternated (BENCH_RUNS): the median, and the range\n\n", broker, runs)
	printHeader(append(titles, "peak RSS", "outputs"))
	for i, r := range rows {
		fmt.Printf("| %s |", r.label)
		for _, c := range cols {
			fmt.Printf(" %s |", spreadf(results[i], c.unit, c.format))
		}
		fmt.Printf(" %s MB | %s |\n", spread(results[i], "peak-RSS-MB"), spread(results[i], "outputs"))
	}
	if streams {
		fmt.Printf("\nratios, run by run: the median, and the range\n\n")
		printHeader(titles)
		for _, c := range []struct {
			label string
			a, b  int
		}{{"dedupe: pythia-pipe / Kafka Streams", dedupe, dedupeStreams}, {"aggregate: pythia-pipe / Kafka Streams", aggregate, aggregateStreams}} {
			fmt.Printf("| %s |", c.label)
			for _, col := range cols {
				ratios := make([]result, runs)
				for j := range ratios {
					ratios[j] = result{col.unit: results[c.a][j][col.unit] / results[c.b][j][col.unit]}
				}
				fmt.Printf(" %s× |", spreadf(ratios, col.unit, "%.2f"))
			}
			fmt.Println()
		}
	}

	paced := []peer{{rows[dedupe].label, "BenchmarkLatencyDedupePipeline"}}
	if streams {
		paced = append(paced, peer{rows[dedupeStreams].label, "BenchmarkLatencyDedupeStreams"})
	}
	paced = append(paced, peer{rows[aggregate].label, "BenchmarkLatencyAggregatePipeline"})
	if streams {
		paced = append(paced, peer{rows[aggregateStreams].label, "BenchmarkLatencyAggregateStreams"})
	}
	latencies := rounds(binary, paced, runs)
	fmt.Printf("\nend to end at a steady 20,000 records/s (BENCH_RATE), after a warm-up; %d run(s) each, alternated: the median, and the range. "+
		"A dedupe's from a record's production to its copy's arrival (BENCH_SECONDS, default 15); an aggregate's from the moment a window could close "+
		"(its end plus grace, the records stamped as produced) to its output's arrival, every window closing in the run (BENCH_AGG_SECONDS, default 75)\n\n"+
		"| | p50 | p99 | measured |\n|---|---|---|---|\n", runs)
	for i, p := range paced {
		fmt.Printf("| %s | %s ms | %s ms | %s |\n", p.label, spreadf(latencies[i], "p50-ms", "%.1f"), spreadf(latencies[i], "p99-ms", "%.1f"), spread(latencies[i], "measured"))
	}

	if os.Getenv("BENCH_RESTORE") == "0" {
		return
	}
	restores := rounds(binary, []peer{{"dedupe restore", "BenchmarkDedupeRestore"}}, runs)[0]
	fmt.Printf("\nthe dedupe as a process of its own: BENCH_KEYS distinct keys in (the fill), then its state dir deleted and its stores rebuilt from their changelogs; %d run(s): the median, and the range\n\n", runs)
	fmt.Printf("| keys | fill records/s | fill CPU µs/record | fill peak RSS | state dir | restored records | restore | restore records/s | longest partition | restart to caught up | restore peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %s | %s | %s | %s MB | %s MB | %s | %s s | %s | %s s | %s s | %s MB |\n", spread(restores, "keys"),
		spread(restores, "fill-records/s"), spreadf(restores, "fill-cpu-µs/record", "%.1f"), spread(restores, "fill-peak-RSS-MB"),
		spread(restores, "state-dir-MB"), spread(restores, "restored-records"), spreadf(restores, "restore-s", "%.1f"),
		spread(restores, "restore-records/s"), spreadf(restores, "longest-partition-s", "%.1f"), spreadf(restores, "restart-to-caught-up-s", "%.1f"),
		spread(restores, "restore-peak-RSS-MB"))
}
