package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// BenchmarkOrdersRun is BenchmarkOrdersPipeline as a user runs it: `pythia-pipe run
// pipelines/orders.yaml` in a process of its own, built from this tree, with the benchmarks'
// commit_interval (100 ms). Its clock starts at the launch; its CPU and peak RSS are the
// process's alone (the benchmark's own process holds a test binary, the harness and, in
// process, the broker), and file-RSS-MB is how much of the RSS at the end is the binary's
// code and data mapped from the page cache (shared, given back under pressure; 30–40 MB of
// pythia-pipe's, where a small Go program maps 2). BENCH_RUN_ENV adds variables to the
// run's environment alone (GOGC=200 GOMEMLIMIT=60MiB: what a user would set; GODEBUG=gctrace=1),
// BENCH_RUN_ARGS flags to its command line (--pprof 127.0.0.1:6060: its profiles as it runs),
// and BENCH_RUN_LOG=FILE keeps what it wrote to its output there.
func BenchmarkOrdersRun(b *testing.B) { benchRun(b, false) }

// BenchmarkOrdersRunExactlyOnce is BenchmarkOrdersRun with delivery: exactly_once.
func BenchmarkOrdersRunExactlyOnce(b *testing.B) { benchRun(b, true) }

func benchRun(b *testing.B, exactlyOnce bool) {
	n := backlog()
	binary := pythiaBinary(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := setup(b, n)
		defer br.Close()
		file := ordersRunFile(b, exactlyOnce)
		b.StartTimer()
		began := startClock(br)
		env := append([]string{"KAFKA_BROKERS=" + strings.Join(br.Addrs(), ",")}, strings.Fields(os.Getenv("BENCH_RUN_ENV"))...)
		args := append([]string{"run", file}, strings.Fields(os.Getenv("BENCH_RUN_ARGS"))...)
		p := testproc.Start(b, binary, "pythia-pipe run", env, args...)
		waitCaughtUp(b, br, "order-processors", "orders")
		took := began.stop()
		took.cpu = cpuTime(p.Pid()) // the child's alone, from its start
		peak := vmHWM(p.Pid())
		mapped := procStatusMB(p.Pid(), "RssFile:") // the binary's pages, shared with the page cache
		b.StopTimer()
		stopProc(b, p)
		if path := os.Getenv("BENCH_RUN_LOG"); path != "" {
			if err := os.WriteFile(path, []byte(p.Output()), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		report(b, n, took)
		b.ReportMetric(peak, "peak-RSS-MB") // the run's, in place of this process's
		b.ReportMetric(mapped, "file-RSS-MB")
	}
}

// ordersRunFile writes pipelines/orders.yaml (or BENCH_PIPELINE's file) with the benchmarks'
// commit_interval (and delivery: exactly_once when asked) to a file of the benchmark's.
func ordersRunFile(b *testing.B, exactlyOnce bool) string {
	file := ordersFile()
	src, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	const group = "\n  group: order-processors"
	edited := bytes.Replace(src, []byte(group), []byte(group+"\n  commit_interval: "+commitInterval.String()), 1)
	if bytes.Equal(edited, src) {
		b.Fatalf("%s has no %q to edit", file, strings.TrimSpace(group))
	}
	src = edited
	if exactlyOnce {
		src = withExactlyOnce(b, src)
	}
	out := filepath.Join(b.TempDir(), "orders.yaml")
	if err := os.WriteFile(out, src, 0o644); err != nil {
		b.Fatal(err)
	}
	return out
}
