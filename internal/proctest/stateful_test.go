package proctest

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// What the crash tests of the stateful stages (dedupe_test.go, aggregate_test.go) share: the
// size of their feed, and the restores their processes logged.

// feedSize is the size of a crash test's feed: the variable env (DEDUPE_RECORDS,
// AGG_RECORDS) when set, def otherwise.
func feedSize(t *testing.T, env string, def int) int {
	if s := os.Getenv(env); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 {
			t.Fatalf("%s=%q: want a number of records, at least 100", env, s)
		}
		return n
	}
	return def
}

// restoreLog is what a process logged of one store's restore.
type restoreLog struct {
	Partition int32
	From, To  int64
	Clean     bool
	Records   int64
	Took      time.Duration
}

// restores reads the "restoring a store from its changelog" and "store restored" lines of a
// process's log, by partition, in order.
func restores(t testing.TB, logs string) []restoreLog {
	t.Helper()
	var out []restoreLog
	open := map[int32]int{} // partition → its restore being read in out
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `"msg":"restoring a store from its changelog"`) && !strings.Contains(line, `"msg":"store restored"`) {
			continue
		}
		var l struct {
			Msg       string          `json:"msg"`
			Partition int32           `json:"partition"`
			From      int64           `json:"from"`
			To        int64           `json:"to"`
			Clean     bool            `json:"clean"`
			Records   int64           `json:"records"`
			Took      json.RawMessage `json:"took"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("a restore's log line that is not JSON: %v\n%s", err, line)
		}
		if l.Msg != "store restored" {
			open[l.Partition] = len(out)
			out = append(out, restoreLog{Partition: l.Partition, From: l.From, To: l.To, Clean: l.Clean, Records: -1})
			continue
		}
		i, ok := open[l.Partition]
		if !ok {
			t.Fatalf("store restored without its start: %s", line)
		}
		delete(open, l.Partition)
		out[i].Records, out[i].Took = l.Records, logDuration(t, l.Took)
	}
	return out
}

// logDuration reads a duration as slog's JSON handler writes it (nanoseconds) or as text.
func logDuration(t testing.TB, raw json.RawMessage) time.Duration {
	t.Helper()
	var ns int64
	if err := json.Unmarshal(raw, &ns); err == nil {
		return time.Duration(ns)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	t.Fatalf("took: %s is not a duration", raw)
	return 0
}

// logRestores logs the restores a process logged, each and in sum, and returns them; one
// killed before its end has Records -1.
func logRestores(t testing.TB, p *testproc.Proc) []restoreLog {
	t.Helper()
	rs := restores(t, p.Output())
	var recs int64
	var took time.Duration
	for _, r := range rs {
		if r.Records < 0 {
			t.Logf("%s: partition %d: restore from offset %d to %d (clean %v) killed before its end", p.Name, r.Partition, r.From, r.To, r.Clean)
			continue
		}
		t.Logf("%s: partition %d restored from offset %d to %d (clean %v): %d records in %v", p.Name, r.Partition, r.From, r.To, r.Clean, r.Records, r.Took)
		recs += r.Records
		took = max(took, r.Took)
	}
	t.Logf("%s: %d stores restored, %d changelog records, the longest in %v", p.Name, len(rs), recs, took)
	return rs
}
