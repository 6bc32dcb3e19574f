package sinks

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// openFile opens a file sink writing to path, its warnings logged to log.
func openFile(t testing.TB, path string, log io.Writer, report Report) *fileWriter {
	t.Helper()
	sk, err := (&fileSink{name: "out", path: path}).Open(Env{Log: slog.New(slog.NewTextHandler(log, nil))}, report)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sk.Close(t.Context()) })
	return sk.(*fileWriter)
}

// keyed makes n records with keys prefix0..prefix(n-1) and a small JSON body.
func keyed(prefix string, n int) []*record.Record {
	recs := make([]*record.Record, n)
	for i := range recs {
		recs[i] = &record.Record{Key: fmt.Appendf(nil, "%s%d", prefix, i), Value: []byte(`{"n":1}`)}
	}
	return recs
}

// Opening a file that a crash or a full disk left with a partial last line cuts that line
// off, reading only the file's end, and says so once; lines appended after it are whole.
func TestFileOpenRepair(t *testing.T) {
	long := strings.Repeat("x", 3*tailChunk+17) // a partial line longer than what is read at once
	cases := []struct {
		name  string
		file  *string // nil: no file
		want  string
		cut   int
		mkdir bool
	}{
		{name: "ends with a newline", file: ptr("{\"a\":1}\n{\"b\":2}\n"), want: "{\"a\":1}\n{\"b\":2}\n"},
		{name: "partial last line", file: ptr("{\"a\":1}\n{\"b\":2}\n{\"key\""), want: "{\"a\":1}\n{\"b\":2}\n", cut: 6},
		{name: "only a partial line", file: ptr("{\"key\":\"k1\",\"va"), want: "", cut: 15},
		{name: "partial line longer than a chunk", file: ptr("{\"a\":1}\n" + long), want: "{\"a\":1}\n", cut: len(long)},
		{name: "no newline in several chunks", file: ptr(long), want: "", cut: len(long)},
		{name: "NULs after the last line", file: ptr("{\"a\":1}\n\x00\x00\x00\x00"), want: "{\"a\":1}\n", cut: 4},
		{name: "empty file", file: ptr(""), want: ""},
		{name: "missing file", want: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.jsonl")
			if c.file != nil {
				if err := os.WriteFile(path, []byte(*c.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var log bytes.Buffer
			var reports []error
			w := openFile(t, path, &log, func(_ *record.Record, err error) { reports = append(reports, err) })
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("after open: %q, want %q", got, c.want)
			}
			warned := strings.Count(log.String(), "cut a partial last line")
			switch {
			case c.cut == 0 && warned != 0:
				t.Errorf("nothing to cut, yet: %s", log.String())
			case c.cut > 0 && (warned != 1 || !strings.Contains(log.String(), fmt.Sprintf("bytes=%d", c.cut)) || !strings.Contains(log.String(), "level=WARN")):
				t.Errorf("want one warning that %d bytes were cut, got: %s", c.cut, log.String())
			}
			if err := w.Write(t.Context(), keyed("k", 2)); err != nil {
				t.Fatal(err)
			}
			if len(reports) != 2 || reports[0] != nil || reports[1] != nil {
				t.Fatalf("reports %v", reports)
			}
			got, _ = os.ReadFile(path)
			lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
			if !strings.HasPrefix(string(got), c.want) || len(lines) != strings.Count(c.want, "\n")+2 {
				t.Fatalf("after a write: %q", got)
			}
			for _, l := range lines {
				if !json.Valid([]byte(l)) {
					t.Fatalf("a line that is not JSON: %q", l)
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }

// Writers writing at once share syncs, and each record is reported done only after a sync
// that began once its line was in the file.
func TestFileSyncBeforeReport(t *testing.T) {
	const writers = 8
	path := filepath.Join(t.TempDir(), "out.jsonl")
	var mu sync.Mutex
	var syncs int
	var synced []byte // the file as the last sync that succeeded found it when it began
	var bad []string
	w := openFile(t, path, io.Discard, func(rec *record.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil || !bytes.Contains(synced, fmt.Appendf(nil, `"key":%q`, rec.Key)) {
			bad = append(bad, fmt.Sprintf("%s (err %v)", rec.Key, err))
		}
	})
	flushed := func() uint64 {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.flushed
	}
	doSync := w.sync
	w.sync = func() error {
		began, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		mu.Lock()
		syncs++
		first := syncs == 1
		mu.Unlock()
		if first { // the others flush while this sync lasts, and must then share one
			deadline := time.Now().Add(30 * time.Second)
			for flushed() < writers && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		if err := doSync(); err != nil {
			return err
		}
		mu.Lock()
		synced = began
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { _ = w.Write(t.Context(), keyed(fmt.Sprintf("w%d-", i), 10)) })
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("reported done before a sync covered them: %v", bad)
	}
	if flushed() != writers {
		t.Fatalf("%d flushes, want %d", flushed(), writers)
	}
	if syncs < 1 || syncs > 2 {
		t.Fatalf("%d writers waiting at once made %d syncs; want the first and one shared by the rest", writers, syncs)
	}
	if got, _ := os.ReadFile(path); bytes.Count(got, []byte("\n")) != writers*10 {
		t.Fatalf("%d lines, want %d", bytes.Count(got, []byte("\n")), writers*10)
	}
}

// failingFile is a file that every write fails on.
type failingFile struct{ err error }

func (f failingFile) Write([]byte) (int, error) { return 0, f.err }

// A write or a sync that fails stops the pipeline: every record of the batch is reported with
// a stop naming the file and the cause; after a failed sync no later sync is trusted.
func TestFileWriteFailures(t *testing.T) {
	const path = "/data/out.jsonl"
	full := &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
	eio := &os.PathError{Op: "sync", Path: path, Err: syscall.EIO}
	cases := []struct {
		name   string
		write  error // what writing the lines fails with
		syncs  []error
		writes int // Writes made; the last one's reports are checked
		want   string
	}{
		{name: "disk full", write: full, syncs: []error{nil}, writes: 1,
			want: "sink out: cannot write the file: write /data/out.jsonl: no space left on device: free space and restart; the records not synced are read again"},
		{name: "file too large", write: &os.PathError{Op: "write", Path: path, Err: syscall.EFBIG}, syncs: []error{nil}, writes: 1,
			want: "write /data/out.jsonl: file too large: the file is as large as this process may write (ulimit -f)"},
		{name: "sync fails", syncs: []error{eio}, writes: 1, want: "sink out: cannot write the file: sync /data/out.jsonl: input/output error: restart once the cause is fixed"},
		{name: "sync failed before", syncs: []error{eio, nil}, writes: 2, want: "sync /data/out.jsonl: input/output error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var reports []error
			w := &fileWriter{at: "sink out", report: func(_ *record.Record, err error) { reports = append(reports, err) }}
			w.out = bufio.NewWriter(io.Discard)
			if c.write != nil {
				w.out = bufio.NewWriter(failingFile{c.write})
			}
			calls := 0
			w.sync = func() error { calls++; return c.syncs[min(calls, len(c.syncs))-1] }
			for i := range c.writes {
				reports = nil
				if err := w.Write(t.Context(), keyed(fmt.Sprint(i), 3)); err != nil {
					t.Fatal(err)
				}
			}
			if len(reports) != 3 {
				t.Fatalf("%d reports, want 3", len(reports))
			}
			for _, err := range reports {
				var f *failure.Error
				if !errors.As(err, &f) || f.Outcome != failure.Stop || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("reported %v; want a stop saying %q", err, c.want)
				}
			}
		})
	}
}

// Standard output and files that are not regular files are written without a sync.
func TestFileNotSynced(t *testing.T) {
	for _, path := range []string{"-", os.DevNull} {
		w := openFile(t, path, io.Discard, func(*record.Record, error) {})
		if w.sync != nil {
			t.Errorf("%s: synced", path)
		}
	}
}
