//go:build linux && !e2e

package proctest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// The file sink's durability (issue 24): a run stopped by a full disk, or killed in the
// middle of a write, leaves files that a restart completes into valid JSON lines holding
// every record.

// filesPipeline writes a pipeline that reads the orders feed (in the group verify and finish
// know) and writes it, decoded, to out.jsonl in dir, its bad JSON to dlq.jsonl beside it.
func filesPipeline(t *testing.T, dir string) string {
	t.Helper()
	src := fmt.Sprintf(`version: 1
name: files
kafka: {brokers: "${KAFKA_BROKERS}"}
source:
  type: kafka
  topics: [orders]
  group: %s
  start: earliest
  session_timeout: 3s
  heartbeat_interval: 500ms
  rebalance_timeout: 30s
  drain_timeout: 15s
  commit_interval: 200ms
  max_pending: 2000
stages:
  - {name: parse, type: decode}
sinks:
  - {name: out, type: file, path: %q}
dlq: {type: file, path: %q}
`, group, filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "dlq.jsonl"))
	path := filepath.Join(t.TempDir(), "files.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkFiles asserts that out.jsonl and dlq.jsonl in dir hold only whole lines of valid JSON,
// and every record of the feed's first n in the file its fate says, at least once; it returns
// the number of duplicates.
func checkFiles(t *testing.T, dir string, n int) (duplicates int) {
	t.Helper()
	copies := make([]int, n)
	for _, name := range []string{"out", "dlq"} {
		b, err := os.ReadFile(filepath.Join(dir, name+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("%s.jsonl ends with a partial line: %q", name, b[max(0, len(b)-80):])
		}
		for i, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			var line struct{ Headers map[string]string }
			if err := json.Unmarshal(l, &line); err != nil {
				t.Fatalf("%s.jsonl line %d is not JSON (%v): %q", name, i+1, err, l)
			}
			seq, err := strconv.Atoi(line.Headers["seq"])
			if err != nil || seq < 0 || seq >= n {
				t.Fatalf("%s.jsonl line %d: seq header %q", name, i+1, line.Headers["seq"])
			}
			if (devbroker.OrdersFate(seq) == "dlq") != (name == "dlq") {
				t.Fatalf("%s.jsonl line %d: record %d, which belongs to %s", name, i+1, seq, devbroker.OrdersFate(seq))
			}
			copies[seq]++
		}
	}
	var missing []int
	for seq, c := range copies {
		if c == 0 {
			missing = append(missing, seq)
		}
		duplicates += max(c-1, 0)
	}
	if len(missing) > 0 {
		t.Fatalf("%d records lost, the first %v", len(missing), missing[:min(10, len(missing))])
	}
	return duplicates
}

// partialTail is the length of the partial line path ends with: 0 when it ends with '\n'.
func partialTail(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(b) - (bytes.LastIndexByte(b, '\n') + 1)
}

// checkCut asserts that p logged cutting a partial line of cut bytes off path, once, when
// cut is not 0, and nothing about path otherwise.
func checkCut(t *testing.T, p *testproc.Proc, path string, cut int) {
	t.Helper()
	var said []int
	for _, l := range strings.Split(p.Output(), "\n") {
		var entry struct {
			Level, Msg, File string
			Bytes            int
		}
		if json.Unmarshal([]byte(l), &entry) == nil && entry.File == path && strings.HasPrefix(entry.Msg, "cut a partial last line") {
			if entry.Level != "WARN" {
				t.Errorf("%s: the cut was logged at %s", p.Name, entry.Level)
			}
			said = append(said, entry.Bytes)
		}
	}
	switch {
	case cut == 0 && len(said) > 0:
		t.Errorf("%s: cut %v bytes off %s, which ended with a whole line", p.Name, said, path)
	case cut > 0 && (len(said) != 1 || said[0] != cut):
		t.Errorf("%s: %s ended with a partial line of %d bytes; logged cuts: %v", p.Name, path, cut, said)
	}
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// diskLimit is a way to run out of room for the files: a small tmpfs, or a file size limit.
type diskLimit struct {
	dir   string               // where the files go
	apply func(*testproc.Proc) // to a process just started
	lift  func(t *testing.T)   // makes room for the restart
	cause string               // what the stop must name
	hint  string               // and what it must say to do
}

// tmpfsLimit mounts a tmpfs of size bytes, grown to 64 MiB by lift; ok is false when this
// process may not mount.
func tmpfsLimit(t *testing.T, size int) (l diskLimit, ok bool) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Logf("cannot mount a tmpfs (%v): limiting the process's file size instead", err)
		return diskLimit{}, false
	}
	t.Cleanup(func() { // after the processes' cleanups (registered later, run first) killed them
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Logf("unmounting %s: %v; detaching it", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return diskLimit{dir: dir, apply: func(*testproc.Proc) {}, cause: "no space left on device", hint: "free space and restart",
		lift: func(t *testing.T) {
			if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
				t.Fatalf("growing the tmpfs: %v", err)
			}
		}}, true
}

// fsizeLimit limits the size of the files a process writes to size bytes (RLIMIT_FSIZE):
// a write past it fails with EFBIG (Go ignores the SIGXFSZ that comes with it). lift starts
// the next processes without it.
func fsizeLimit(t *testing.T, size int) diskLimit {
	lifted := false
	return diskLimit{dir: t.TempDir(), cause: "file too large", hint: "ulimit -f",
		// Set after the start, before the process has connected, let alone written.
		apply: func(p *testproc.Proc) {
			if lifted {
				return
			}
			lim := unix.Rlimit{Cur: uint64(size), Max: uint64(size)}
			if err := unix.Prlimit(p.Pid(), unix.RLIMIT_FSIZE, &lim, nil); err != nil {
				t.Fatalf("limiting %s's file size: %v", p.Name, err)
			}
		},
		lift: func(*testing.T) { lifted = true }}
}

// A full disk stops the run with one line naming the file and the cause; once there is room
// a restart cuts the partial line it left and writes the rest: every line is JSON, nothing
// is lost. Run on a small tmpfs, and with a file size limit (how it runs where mounting is
// not allowed).
func TestFileSinkFullDisk(t *testing.T) {
	const n, room = 20_000, 128 << 10
	cases := []struct {
		name  string
		limit func(t *testing.T) diskLimit
	}{
		{"tmpfs", func(t *testing.T) diskLimit {
			if l, ok := tmpfsLimit(t, room); ok {
				return l
			}
			return fsizeLimit(t, room)
		}},
		{"file size limit", func(t *testing.T) diskLimit { return fsizeLimit(t, room) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := cluster(t, 3)
			feed(t, b, 0, n)
			l := c.limit(t)
			file := filesPipeline(t, l.dir)
			p := start(t, b, "full", "run", file)
			l.apply(p)
			if code := p.Wait(t, 90*time.Second); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			last := testproc.LastLines(p.Output(), 1)
			if !strings.HasPrefix(last, "pythia-pipe: ") || !strings.Contains(last, "cannot write the file") ||
				!strings.Contains(last, l.dir) || !strings.Contains(last, l.cause) || !strings.Contains(last, l.hint) {
				t.Fatalf("the run's last line does not say that %s stopped it: %s", l.cause, last)
			}
			cut := map[string]int{}
			for _, name := range []string{"out", "dlq"} {
				path := filepath.Join(l.dir, name+".jsonl")
				cut[path] = partialTail(t, path)
			}
			l.lift(t)
			restart := finish(t, b, file, "restart")
			for path, c := range cut {
				checkCut(t, restart, path, c)
			}
			dups := checkFiles(t, l.dir, n)
			t.Logf("stopped by: %s; after the restart (partial lines cut: %v): every line JSON, nothing lost, %d duplicates", last, cut, dups)
		})
	}
}

// SIGKILL at random moments while the file sink writes, a restart after each: every line of
// the files is whole JSON at the end, and nothing is lost.
func TestFileSinkKilled(t *testing.T) {
	const n, kills = 100_000, 4
	b := cluster(t, 3)
	feed(t, b, 0, n)
	dir := t.TempDir()
	file := filesPipeline(t, dir)
	out := filepath.Join(dir, "out.jsonl")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 24))
	cut := 0 // the partial line the last kill left in out
	partials := 0
	for k := range kills {
		p := start(t, b, "run", "run", file)
		// A random moment: once the file has grown by 64 KiB to 1 MiB more.
		target := fileSize(out) + 64<<10 + rng.Int64N(1<<20)
		waitFor(t, 90*time.Second, "the file to grow before the kill", func() bool { return fileSize(out) >= target || !p.Running() })
		if !p.Running() {
			t.Fatalf("pythia-pipe exited before it was killed")
		}
		p.Signal(t, syscall.SIGKILL)
		p.Wait(t, 10*time.Second) // and its output read to the end
		checkCut(t, p, out, cut)
		if cut = partialTail(t, out); cut > 0 {
			partials++
		} else {
			// A kill lands inside a flush's write calls rarely (most of the time goes to the
			// fsync): leave what it would have, the first half of a line, so that every
			// restart has one to cut.
			cut = halfLine(t, out)
		}
		t.Logf("kill %d at %d bytes written, a partial line of %d bytes left", k+1, fileSize(out), cut)
	}
	checkCut(t, finish(t, b, file, "final run"), out, cut)
	dups := checkFiles(t, dir, n)
	t.Logf("after %d SIGKILLs (%d left a partial line themselves): every line JSON, nothing lost, %d duplicates", kills, partials, dups)
}

// halfLine appends to path the first half of its last line, as a write cut short leaves it,
// and returns its length.
func halfLine(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	half := b[bytes.LastIndexByte(b, '\n')+1:]
	half = half[:len(half)/2]
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(half); err != nil {
		t.Fatal(err)
	}
	return len(half)
}
