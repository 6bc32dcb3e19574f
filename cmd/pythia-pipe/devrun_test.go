package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
	"github.com/pythia-pipe/pythia-pipe/metrics"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// scoring enriches each record from a service at ${SCORE_URL}; its breaker opens at the first
// failure.
const scoring = `version: 1
name: scoring
kafka: {brokers: "${KAFKA_BROKERS:-localhost:9092}"}
source: {type: kafka, topics: [in]}
stages:
  - {name: parse, type: decode, schema: {id: string}}
  - name: score
    type: enrich
    http: {url: '"${SCORE_URL}/?id=" + msg.id', timeout: 1s, breaker: {failures: 1, cooldown: 1s}}
    into: risk
sinks:
  - {name: out, type: kafka, topic: out}
dlq: {type: kafka, topic: in-dlq}
`

// scoringEOS is scoring in transactions: a stop at once aborts the open one instead of
// waiting for the records a stage holds.
var scoringEOS = strings.Replace(scoring, "\nkafka:", "\ndelivery: exactly_once\nkafka:", 1)

const scoringFeed = "{\"id\": \"a\"}\n{\"id\": \"b\"}\n{\"id\": \"c\"}\n{\"id\": \"d\"}\n"

// service answers while up is true, and fails every call (503) otherwise.
func service(t *testing.T, up *atomic.Bool) string {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"score": 0.5}`)
	}))
	t.Cleanup(svc.Close)
	return svc.URL
}

// devAsync runs dev in the background; its output can be read while it runs, and the
// returned channel gives its exit code.
func devAsync(args ...string) (out *testproc.Buffer, code <-chan int) {
	out = &testproc.Buffer{}
	c := make(chan int, 1)
	go func() { c <- run(append([]string{"dev"}, args...), out, out) }()
	return out, c
}

func exitOf(t *testing.T, code <-chan int, out *testproc.Buffer) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(60 * time.Second):
		t.Fatalf("dev still runs after 60 s:\n%s", out.String())
		return 0
	}
}

// A stage waiting for its service is said once it has waited 5 s, then every 10 s, and once
// when it answers again; at --timeout the summary counts the records left unfinished, naming
// the stage they wait in and why. --timeout ends the run at once in either delivery mode:
// exactly-once aborts its open transaction rather than wait for the drain or the
// transaction's deadline (24 s of its 30 s).
func TestDevSaysWhatWaits(t *testing.T) {
	downPastTimeout := []string{"waiting: score (its service has failed every call for 5s; ", "stopped by --timeout 7s\n",
		"  unfinished             4 records  not committed: a run would read them again\n"}
	waitedInScore := []string{`(?m)^      \d waiting in score: its service has failed every call for [5-7]s$`}
	cases := []struct {
		name      string
		pipeline  string
		comesBack bool
		args      []string
		code      int
		within    time.Duration // from start to exit; 0: exitOf's
		says      []string
		matches   []string
	}{
		{"the service comes back", scoring, true, nil, exitOK, 0,
			[]string{"waiting: score (its service has failed every call for 5s; ", "sink out               4 records"},
			[]string{`(?m)^done waiting: score, after [5-7]s$`}},
		{"the service stays down past --timeout", scoring, false, []string{"--timeout", "7s"}, exitInvalid, 15 * time.Second,
			downPastTimeout, waitedInScore},
		{"exactly once: the service stays down past --timeout", scoringEOS, false, []string{"--timeout", "7s"}, exitInvalid, 15 * time.Second,
			downPastTimeout, waitedInScore},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var up atomic.Bool
			t.Setenv("SCORE_URL", service(t, &up))
			file, feed := devFiles(t, c.pipeline, scoringFeed)
			start := time.Now()
			out, code := devAsync(append([]string{file, "--feed", feed, "--partitions", "1"}, c.args...)...)
			if c.comesBack {
				testproc.WaitFor(t, 30*time.Second, "the waiting line", func() bool { return strings.Contains(out.String(), "waiting: score") })
				up.Store(true)
			}
			if got := exitOf(t, code, out); got != c.code {
				t.Fatalf("exit %d, want %d\n%s", got, c.code, out.String())
			}
			if d := time.Since(start); c.within > 0 && d > c.within {
				t.Errorf("dev took %v to end, want at most %v\n%s", d.Round(time.Millisecond), c.within, out.String())
			}
			for _, want := range c.says {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
			for _, re := range c.matches {
				if !regexp.MustCompile(re).MatchString(out.String()) {
					t.Errorf("output does not match %s:\n%s", re, out.String())
				}
			}
		})
	}
}

// signalsFor makes dev take its interrupts from the returned channel for the test.
func signalsFor(t *testing.T) chan<- os.Signal {
	c := make(chan os.Signal, 2)
	saved := devSignals
	devSignals = func() (<-chan os.Signal, func()) { return c, func() {} }
	t.Cleanup(func() { devSignals = saved })
	return c
}

// The first Ctrl-C drains, which waits while the service is down; the second stops at once
// and prints the summary, what waited in it. Under exactly-once the drain waits in the open
// transaction, which the second Ctrl-C aborts.
func TestDevSecondCtrlC(t *testing.T) {
	for _, c := range []struct{ name, pipeline string }{{"at least once", scoring}, {"exactly once", scoringEOS}} {
		t.Run(c.name, func(t *testing.T) { testDevSecondCtrlC(t, c.pipeline) })
	}
}

func testDevSecondCtrlC(t *testing.T, text string) {
	sigs := signalsFor(t)
	var up atomic.Bool
	t.Setenv("SCORE_URL", service(t, &up))
	file, feed := devFiles(t, text, scoringFeed)
	out, code := devAsync(file, "--feed", feed, "--partitions", "1")
	healthz := regexp.MustCompile(`health (http://\S+/healthz)`)
	testproc.WaitFor(t, 30*time.Second, "a stage waiting, on /healthz", func() bool {
		m := healthz.FindStringSubmatch(out.String())
		if m == nil {
			return false
		}
		resp, err := http.Get(m[1])
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		return strings.Contains(body.String(), "waiting for a service: score (") && !strings.Contains(body.String(), "; 0 records wait")
	})
	sigs <- syscall.SIGINT
	testproc.WaitFor(t, 10*time.Second, "the drain", func() bool { return strings.Contains(out.String(), "draining: ") })
	start := time.Now()
	sigs <- syscall.SIGINT
	if got := exitOf(t, code, out); got != exitInvalid {
		t.Fatalf("exit %d, want %d\n%s", got, exitInvalid, out.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("dev took %v to stop after the second Ctrl-C", d)
	}
	for _, want := range []string{"stopped at the second Ctrl-C\n", "  unfinished             4 records  not committed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if !regexp.MustCompile(`(?m)^      \d waiting in score: its service has failed every call for \d+s$`).MatchString(out.String()) {
		t.Errorf("the summary does not say what waited in score:\n%s", out.String())
	}
}

// With --follow, dev prints the commands that point tap and dlq replay at its broker, and
// they work: tap reads what the pipeline wrote.
func TestDevFollowPointsTapAtItsBroker(t *testing.T) {
	sigs := signalsFor(t)
	file, feed := devFiles(t, passes, "{\"n\": 1}\n{\"n\": 2}\n")
	if err := os.WriteFile(file, []byte(strings.Replace(passes, "name: passes\n", "name: passes\nkafka: {brokers: \"${KAFKA_BROKERS:-localhost:9092}\"}\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := devAsync(file, "--feed", feed, "--partitions", "1", "--follow")
	line := regexp.MustCompile(`(?m)^  KAFKA_BROKERS=(127\.0\.0\.1:\d+) pythia-pipe tap (\S+) out --follow$`)
	testproc.WaitFor(t, 30*time.Second, "the tap line", func() bool { return line.MatchString(out.String()) })
	m := line.FindStringSubmatch(out.String())
	if m[2] != file {
		t.Errorf("the tap line names %s, not %s", m[2], file)
	}
	for _, want := range []string{
		"  KAFKA_BROKERS=" + m[1] + " pythia-pipe tap " + file + " dlq --follow\n",
		"  KAFKA_BROKERS=" + m[1] + " pythia-pipe dlq replay " + file + " --dry-run\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Setenv("KAFKA_BROKERS", m[1])
	testproc.WaitFor(t, 30*time.Second, "tap to show both records", func() bool {
		var tapped bytes.Buffer
		run([]string{"tap", file, "out", "--format", "json"}, &tapped, &tapped)
		return strings.Count(tapped.String(), `"topic":"out"`) == 2
	})
	sigs <- syscall.SIGINT
	if got := exitOf(t, code, out); got != exitOK {
		t.Fatalf("exit %d\n%s", got, out.String())
	}
}

// The tap and dlq replay lines, or why there are none and what to change.
func TestToolLines(t *testing.T) {
	cases := []struct {
		name, kafka string
		dlq         bool
		want        []string
	}{
		{"a variable, a DLQ", `{brokers: "${KAFKA_BROKERS:-localhost:9092}"}`, true, []string{
			"to look at its topics while it runs, from another terminal:",
			"  KAFKA_BROKERS=127.0.0.1:4000 pythia-pipe tap FILE out --follow",
			"  KAFKA_BROKERS=127.0.0.1:4000 pythia-pipe tap FILE dlq --follow",
			"  KAFKA_BROKERS=127.0.0.1:4000 pythia-pipe dlq replay FILE --dry-run"}},
		{"a variable of another name, a list, no DLQ", "{brokers: [\"${BOOT}\"]}", false, []string{
			"to look at its topics while it runs, from another terminal:",
			"  BOOT=127.0.0.1:4000 pythia-pipe tap FILE out --follow"}},
		{"written as is", "{brokers: localhost:9092}", true, []string{
			"note: kafka.brokers names no ${VAR}, so tap and dlq replay cannot be pointed at the in-process broker: write it as ${KAFKA_BROKERS:-localhost:9092}"}},
		{"security", `{brokers: "${B}", security: {protocol: SASL_PLAINTEXT, sasl: {mechanism: PLAIN, username: u, password: p}}}`, true, []string{
			"note: tap and dlq replay would use kafka.security, which the in-process broker does not speak: to look at its topics, run dev on a copy of FILE without it"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "version: 1\nname: t\nkafka: " + c.kafka + "\nsource: {type: kafka, topics: [in]}\nsinks: [{name: out, type: kafka, topic: out}]\n"
			if c.dlq {
				src += "dlq: {type: kafka, topic: in-dlq}\n"
			}
			file, _ := devFiles(t, src, "")
			var diags bytes.Buffer
			p, ok, _ := load(file, pipeline.Options{Unused: devReplaced}, &diags)
			if !ok {
				t.Fatalf("the pipeline does not load:\n%s", diags.String())
			}
			got := strings.ReplaceAll(strings.Join(toolLines(p, []string{"127.0.0.1:4000"}), "\n"), file, "FILE")
			if got != strings.Join(c.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", got, strings.Join(c.want, "\n"))
			}
		})
	}
}

// --out writes each sink's records and the DLQ's as JSON lines, as tap --format json prints
// them; a golden file holds the sink's.
func TestDevOut(t *testing.T) {
	file, feed := devFiles(t, passes, strings.Join([]string{
		`{"key": "k1", "value": {"n": 1}, "headers": {"trace": "t-1"}, "timestamp": "2026-11-26T10:00:00Z"}`,
		`{"key": "k2", "value": null, "timestamp": "2026-11-26T10:00:01Z"}`,
		`{"value": "not json", "timestamp": "2026-11-26T10:00:02Z"}`,
	}, "\n")+"\n")
	dir := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"dev", file, "--feed", feed, "--partitions", "1", "--out", dir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"out: 2 records of out → " + filepath.Join(dir, "out.jsonl"), "out: 1 records of dlq → " + filepath.Join(dir, "dlq.jsonl")} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/dev-out.jsonl", got)
	dlq, err := os.ReadFile(filepath.Join(dir, "dlq.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"topic":"in-dlq"`, `"value":"not json"`, `"pythia.stage":"parse"`} {
		if !strings.Contains(string(dlq), want) {
			t.Errorf("dlq.jsonl lacks %s:\n%s", want, dlq)
		}
	}
}

// golden compares got with the file at path; UPDATE_GOLDEN=1 writes it.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot\n%s\nwant\n%s", path, got, want)
	}
}

// run says waits as warnings, which its default level (info) shows.
func TestRunLogsWaits(t *testing.T) {
	w := metrics.Wait{Name: "score", Why: "its service has failed every call", For: 15 * time.Second, Held: "2 records wait", Records: 2}
	cases := []struct {
		name string
		news metrics.WaitNews
		want string
	}{
		{"began", metrics.WaitNews{Wait: w, Phase: metrics.WaitBegan},
			`level=WARN msg="waiting: records are held until it answers again; none is dead-lettered" waiting_on="score (its service has failed every call for 15s; 2 records wait)"`},
		{"lasts", metrics.WaitNews{Wait: w, Phase: metrics.WaitLasts}, `level=WARN msg="still waiting" waiting_on="score (its service has failed every call for 15s; 2 records wait)"`},
		{"over", metrics.WaitNews{Wait: w, Phase: metrics.WaitOver, Lasted: 22 * time.Second}, `level=WARN msg="done waiting" on=score after=22s`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			logWait(log)(c.news)
			if got := strings.TrimSpace(buf.String()); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}
