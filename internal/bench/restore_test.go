package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// BenchmarkDedupeRestore is issue 28's restore: testdata/dedupe.yaml, run as a process of its
// own (the built binary, so that its memory is its own and not the broker's), fills its stores
// with BENCH_KEYS (default 1M) distinct keys and stops; its state dir is deleted; the next run
// rebuilds the stores from their changelogs as the first record of each partition reaches the
// stage. It reports the first run's throughput and peak RSS with that many keys
// (fill-records/s, fill-peak-RSS-MB), and the restore: the changelog records applied, the time
// from the first restore's start to the last one's end as the process logged them (restore-s)
// and their rate, the longest partition's, and the second run's peak RSS.
func BenchmarkDedupeRestore(b *testing.B) {
	n := envInt("BENCH_KEYS", 1_000_000)
	size := envInt("BENCH_KEY_RECORD_BYTES", 64) // the stores keep keys, not values: a small feed
	bin := pythiaBinary(b)
	sb := dedupeBench
	sb.feed = distinctFeed
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := setupState(b, sb, n, size)
		defer br.Close()
		stateDir := b.TempDir()
		file, err := filepath.Abs(sb.file)
		if err != nil {
			b.Fatal(err)
		}
		env := []string{"KAFKA_BROKERS=" + strings.Join(br.Addrs(), ","), "STATE_DIR=" + stateDir}

		began := startClock(br)
		fill, stopWatch := startProfiled(b, bin, "fill", env, file, "")
		fillCPU := cpuTime(fill.Pid())
		waitCaughtUp(b, br, sb.group, sb.in)
		took := began.stop()
		close(stopWatch)
		fillPeak, fillCPU := vmHWM(fill.Pid()), cpuTime(fill.Pid())-fillCPU
		stateBytes := dirBytes(stateDir)
		stopProc(b, fill)
		b.ReportMetric(float64(n)/took.wall.Seconds(), "fill-records/s")
		b.ReportMetric(float64(fillCPU.Microseconds())/float64(n), "fill-cpu-µs/record")
		b.ReportMetric(fillPeak, "fill-peak-RSS-MB")
		b.ReportMetric(float64(stateBytes)/(1<<20), "state-dir-MB")

		if err := os.RemoveAll(stateDir); err != nil {
			b.Fatal(err)
		}
		// A record more in each partition, so that each store is opened, and rebuilt.
		ends := br.EndOffsets(sb.in)
		for next := n; ; next += 64 {
			if err := br.Produce(context.Background(), sb.in, distinctFeed(next, next+64, size)); err != nil {
				b.Fatal(err)
			}
			grown := true
			for p, end := range br.EndOffsets(sb.in) {
				grown = grown && end > ends[p]
			}
			if grown {
				break
			}
		}
		restart := time.Now()
		again, stopWatch := startProfiled(b, bin, "restore", env, file, ".restore")
		waitCaughtUp(b, br, sb.group, sb.in)
		close(stopWatch)
		wall := time.Since(restart)
		restorePeak := vmHWM(again.Pid())
		stopProc(b, again)
		rs := restoreLines(b, again.Output())
		if len(rs.took) != int(partitions()) {
			b.Fatalf("%d stores restored, not %d:\n%s", len(rs.took), partitions(), testproc.LastLines(again.Output(), 40))
		}
		b.ReportMetric(float64(rs.records), "restored-records")
		b.ReportMetric(rs.span.Seconds(), "restore-s")
		b.ReportMetric(float64(rs.records)/rs.span.Seconds(), "restore-records/s")
		b.ReportMetric(rs.longest().Seconds(), "longest-partition-s")
		b.ReportMetric(wall.Seconds(), "restart-to-caught-up-s")
		b.ReportMetric(restorePeak, "restore-peak-RSS-MB")
		b.ReportMetric(float64(n)/took.wall.Seconds(), "records/s") // for the table: the fill's
		b.ReportMetric(float64(n), "keys")
	}
}

// startProfiled runs the pipeline file as a process of its own called name. With
// BENCH_PPROF=ADDR it serves its profiles there, and with BENCH_HEAPPROFILE=FILE its heap at
// its peak resident memory goes to FILE+suffix (watchPeak) until stop is closed.
func startProfiled(b *testing.B, bin, name string, env []string, file, suffix string) (p *testproc.Proc, stop chan struct{}) {
	args := []string{"run", file}
	addr, path := os.Getenv("BENCH_PPROF"), os.Getenv("BENCH_HEAPPROFILE")
	if addr != "" {
		args = append(args, "--pprof", addr)
	}
	p, stop = testproc.Start(b, bin, name, env, args...), make(chan struct{})
	if addr != "" && path != "" {
		go watchPeak(p.Pid(), "http://"+addr+"/debug/pprof/heap", path+suffix, stop)
	}
	return p, stop
}

// watchPeak saves the heap profile of process pid (at url), as text with the runtime's
// MemStats, and its smaps_rollup to path, path.txt and path.smaps each time its resident memory reaches a new peak (checked every 200 ms), until
// stop is closed.
func watchPeak(pid int, url, path string, stop <-chan struct{}) {
	var peak float64
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		rss := vmRSS(pid)
		if rss < peak+4 {
			continue
		}
		peak = rss
		if resp, err := http.Get(url); err == nil { // #nosec G107 -- the benchmark's own process
			if f, err := os.Create(path); err == nil {
				_, _ = io.Copy(f, resp.Body)
				f.Close()
			}
			resp.Body.Close()
		}
		if resp, err := http.Get(url + "?debug=1"); err == nil { // #nosec G107 -- its MemStats at the end
			if f, err := os.Create(path + ".txt"); err == nil {
				_, _ = io.Copy(f, resp.Body)
				f.Close()
			}
			resp.Body.Close()
		}
		if rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
			_ = os.WriteFile(path+".smaps", rollup, 0o644)
		}
	}
}

// pythiaBinary builds cmd/pythia-pipe into the benchmark's temporary folder.
func pythiaBinary(b *testing.B) string {
	root, err := realkafka.FindRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin, err := testproc.Build(root, b.TempDir(), false)
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

// stopProc stops p with SIGTERM and waits for it.
func stopProc(b *testing.B, p *testproc.Proc) {
	p.Signal(b, syscall.SIGTERM)
	if code := p.Wait(b, time.Minute); code != 0 {
		b.Fatalf("%s exited %d:\n%s", p.Name, code, testproc.LastLines(p.Output(), 40))
	}
}

// restored is what a process logged of its restores.
type restored struct {
	records     int64
	took        map[int32]time.Duration
	first, last time.Time // the first restore's start, the last one's end
	span        time.Duration
}

func (r restored) longest() time.Duration {
	var d time.Duration
	for _, t := range r.took {
		d = max(d, t)
	}
	return d
}

// restoreLines reads the "restoring a store from its changelog" and "store restored" lines
// of a process's JSON log.
func restoreLines(b *testing.B, logs string) restored {
	r := restored{took: map[int32]time.Duration{}}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Time      time.Time `json:"time"`
			Msg       string    `json:"msg"`
			Partition int32     `json:"partition"`
			Records   int64     `json:"records"`
			Took      int64     `json:"took"` // slog's JSON: nanoseconds
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		switch l.Msg {
		case "restoring a store from its changelog":
			if r.first.IsZero() || l.Time.Before(r.first) {
				r.first = l.Time
			}
		case "store restored":
			r.records += l.Records
			r.took[l.Partition] = time.Duration(l.Took)
			r.last = l.Time
		}
	}
	if r.first.IsZero() || r.last.IsZero() {
		b.Fatalf("no restore in the log:\n%s", testproc.LastLines(logs, 40))
	}
	r.span = r.last.Sub(r.first)
	return r
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}
