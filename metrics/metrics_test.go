package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/engine"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
	"github.com/pythia-pipe/pythia-pipe/metrics"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// value finds the metric of family name whose labels include want.
func value(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The metrics of a run of the orders example on the in-process broker tell what happened:
// the counters equal the records that took each path, lag reaches 0, the latency histogram
// counts the acknowledged records, /readyz turns 200 once the group is joined.
func TestMetricsOfARun(t *testing.T) {
	const n = 1000
	b, err := devbroker.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, topic := range []string{"orders", "orders-out", "orders-big", "orders-dlq"} {
		if err := b.CreateTopic(topic, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Produce(context.Background(), "orders", devbroker.OrdersFeed(n)); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../pipelines/orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) { return strings.Join(b.Addrs(), ","), k == "KAFKA_BROKERS" }
	p, diags := pipeline.Parse("orders.yaml", src, pipeline.Options{Env: env, BaseDir: "../pipelines"})
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	p.KafkaSource().CommitInterval = 100 * time.Millisecond
	run, err := engine.ConnectKafka(p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(p)
	run.Engine.Observe(m)
	m.Watch(run.Engine, run.Source)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr, served, err := m.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr
	if got := status(t, url+"/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before the group is joined: %d, want 503", got)
	}
	if got := status(t, url+"/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz: %d", got)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run.Run(runCtx) }()
	testproc.WaitFor(t, 30*time.Second, "/readyz to answer 200", func() bool { return status(t, url+"/readyz") == http.StatusOK })
	testproc.WaitFor(t, 60*time.Second, "the group to commit the end of orders", func() bool { return b.CaughtUp("order-processors", "orders") })
	testproc.WaitFor(t, 30*time.Second, "the lag to reach 0 on every partition", func() bool {
		f := scrape(t, url)
		total := 0.0
		for _, part := range []string{"0", "1", "2"} {
			lag, ok := value(f, "pythia_pipe_partition_lag", map[string]string{"partition": part})
			if !ok {
				return false
			}
			total += lag
		}
		return total == 0
	})
	f := scrape(t, url)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pythia_pipe_stage_received_total", map[string]string{"stage": "parse", "pipeline": "orders"}, n},
		{"pythia_pipe_stage_emitted_total", map[string]string{"stage": "parse"}, n * 9 / 10},
		{"pythia_pipe_dlq_total", map[string]string{"stage": "parse"}, n / 10},
		{"pythia_pipe_stage_dropped_total", map[string]string{"stage": "valid"}, n / 10},
		{"pythia_pipe_stage_received_total", map[string]string{"stage": "route"}, n * 8 / 10},
		{"pythia_pipe_sink_acked_total", map[string]string{"sink": "out"}, n * 7 / 10},
		{"pythia_pipe_sink_acked_total", map[string]string{"sink": "big"}, n / 10},
		{"pythia_pipe_sink_acked_total", map[string]string{"sink": "dlq"}, n / 10},
		{"pythia_pipe_end_to_end_latency_seconds", map[string]string{"sink": "out"}, n * 7 / 10},
		{"pythia_pipe_end_to_end_latency_seconds", map[string]string{"sink": "big"}, n / 10},
		{"pythia_pipe_assigned_partitions", nil, 3},
	} {
		if got, ok := value(f, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// A stage's duration is observed once per batch of the records it took.
	if got, ok := value(f, "pythia_pipe_stage_duration_seconds", map[string]string{"stage": "parse"}); !ok || got < 1 || got > n {
		t.Errorf("pythia_pipe_stage_duration_seconds{stage=parse} counts %v observations (found %v), want one per batch: between 1 and %d", got, ok, n)
	}
	if v, ok := value(f, "pythia_pipe_commits_total", nil); !ok || v == 0 {
		t.Errorf("no commits counted")
	}
	if _, ok := f["go_goroutines"]; !ok {
		t.Error("the Go runtime collector is missing")
	}
	if _, ok := f["process_resident_memory_bytes"]; !ok {
		t.Error("the process collector is missing")
	}
	stopRun()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// The Grafana dashboard parses and asks only for metrics this package exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana/pythia-pipe.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	exported := strings.Join(metrics.Names(), " ")
	found := 0
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			for _, name := range regexp.MustCompile(`pythia_pipe_[a-z_]+`).FindAllString(target.Expr, -1) {
				found++
				base := strings.TrimSuffix(name, "_bucket")
				if !strings.Contains(" "+exported+" ", " "+base+" ") {
					t.Errorf("panel %q uses %s, which is not exported", p.Title, name)
				}
			}
		}
	}
	if len(dash.Panels) < 5 || found == 0 {
		t.Errorf("%d panels, %d metric references", len(dash.Panels), found)
	}
}

type fakeEngine struct{ stats engine.Stats }

func (f fakeEngine) Stats() engine.Stats { return f.stats }

type fakeSource struct{}

func (fakeSource) Stats() sources.Stats {
	return sources.Stats{Joined: true, Assigned: 2, Pending: 6, Partitions: map[string]sources.PartitionStats{
		"in/0": {Topic: "in", Partition: 0, Pending: 5, Lag: 40}, "in/1": {Topic: "in", Partition: 1, Pending: 1, Lag: 2}}}
}

// The progress line says, as JSON fields, what went in and out, the lag, pending and DLQ,
// and which stage waits for its service.
func TestProgressLine(t *testing.T) {
	p := &pipeline.Pipeline{Name: "p", Entry: []string{"first"}}
	m := metrics.New(p)
	m.Watch(fakeEngine{engine.Stats{
		"first": {Kind: "stage", Received: 100},
		"score": {Kind: "stage", Stage: map[string]int64{"breaker_state": 2, "outage_ms": 3200, "waiting": 12}},
		"out":   {Kind: "sink", Acked: 80},
		"dlq":   {Kind: "dlq", Acked: 7},
	}}, fakeSource{})
	line := firstProgressLine(t, m)
	if line["lag"] != 42.0 || line["pending"] != 6.0 || line["dlq"] != 7.0 || line["partitions"] != 2.0 || line["in_per_s"].(float64) <= 0 || line["out_per_s"].(float64) <= 0 ||
		line["waiting_on"] != "score (its service has failed every call for 3s; 12 records wait)" {
		t.Errorf("progress line %v", line)
	}
}

// firstProgressLine is the first progress line m logs, as JSON fields.
func firstProgressLine(t *testing.T, m *metrics.Metrics) map[string]any {
	t.Helper()
	var buf testproc.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Progress(ctx, slog.New(slog.NewJSONHandler(&buf, nil)), 10*time.Millisecond); close(done) }()
	testproc.WaitFor(t, 10*time.Second, "a progress line", func() bool { return strings.Contains(buf.String(), `"msg":"progress"`) })
	cancel()
	<-done
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(buf.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatal(err)
	}
	return line
}

type stalledSource struct{ stalled bool }

func (s stalledSource) Stats() sources.Stats {
	return sources.Stats{Joined: true, Assigned: 1, Partitions: map[string]sources.PartitionStats{
		"in/3": {Topic: "in", Partition: 3, Pending: 2000, OldestPending: 301 * time.Second, Stalled: s.stalled}}}
}

// /healthz fails while a partition is stalled, and says which and why (unless it waits for a
// service that is down, which a restart would not cure); the metrics say it too.
func TestHealthzFailsOnAStalledPartition(t *testing.T) {
	waiting := engine.Stats{"score": {Kind: "stage", Stage: map[string]int64{"breaker_state": 2, "outage_ms": 400_000, "waiting": 9}}}
	waitingKafka := engine.Stats{"out": {Kind: "sink", Stage: map[string]int64{"wait_ms": 12_300, "held": 2}}}
	for _, c := range []struct {
		name    string
		stalled bool
		stats   engine.Stats
		code    int
		says    string
	}{
		{"stalled", true, engine.Stats{}, http.StatusServiceUnavailable, "partition in/3 has not committed for longer than stall_timeout: 2000 records pending, the oldest read 5m1s ago"},
		{"moving", false, engine.Stats{}, http.StatusOK, "ok"},
		{"stalled behind a service outage", true, waiting, http.StatusOK, "ok: waiting for a service: score (its service has failed every call for 6m40s; 9 records wait); meanwhile partition in/3"},
		{"waiting for a service", false, waiting, http.StatusOK, "ok: waiting for a service: score (its service has failed every call for 6m40s; 9 records wait)\n"},
		{"stalled behind Kafka", true, waitingKafka, http.StatusOK, "ok: waiting for a service: out (Kafka has acknowledged none of a partition's writes for 12s; 2 partitions held after refused writes); meanwhile partition in/3"},
		{"a sink's short wait is not said", false, engine.Stats{"out": {Kind: "sink", Stage: map[string]int64{"wait_ms": 4_000}}}, http.StatusOK, "ok\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := metrics.New(&pipeline.Pipeline{Name: "p"})
			m.Watch(fakeEngine{c.stats}, stalledSource{c.stalled})
			srv := httptest.NewServer(m.Handler())
			defer srv.Close()
			for path, want := range map[string]string{"/healthz": c.says, "/metrics": fmt.Sprintf(`pythia_pipe_partition_stalled{partition="3",pipeline="p",topic="in"} %d`, map[bool]int{true: 1}[c.stalled])} {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if path == "/healthz" && resp.StatusCode != c.code {
					t.Errorf("/healthz %d, want %d", resp.StatusCode, c.code)
				}
				if !strings.Contains(string(body), want) {
					t.Errorf("%s does not say %q:\n%s", path, want, body)
				}
			}
		})
	}
}

// The numbers stages and sinks keep of their own are exported with their stage's or sink's
// name: an outage shows as a waiting stage with its breaker open.
func TestOwnNumbersExported(t *testing.T) {
	m := metrics.New(&pipeline.Pipeline{Name: "p"})
	m.Watch(fakeEngine{engine.Stats{
		"score": {Kind: "stage", Stage: map[string]int64{"breaker_state": 2, "waiting": 12, "outages": 1, "cache_bytes": 4096, "retries": 3}},
		"out":   {Kind: "sink", Stage: map[string]int64{"refused": 5}},
	}}, fakeSource{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.Metric {
			for _, l := range mt.Label {
				if l.GetName() == "stage" || l.GetName() == "sink" {
					got[f.GetName()+"/"+l.GetValue()] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
				}
			}
		}
	}
	for name, want := range map[string]float64{
		"pythia_pipe_breaker_state/score": 2, "pythia_pipe_stage_waiting/score": 12, "pythia_pipe_enrich_outages_total/score": 1,
		"pythia_pipe_enrich_cache_bytes/score": 4096, "pythia_pipe_retries_total/score": 3, "pythia_pipe_sink_refused_total/out": 5,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

// Every number a stage type or the sinks describe is exported as the metric they name, as a
// counter or a gauge as they say, labelled with its stage or sink: a new type's numbers need
// nothing in this package.
func TestDescribedNumbersExported(t *testing.T) {
	type want struct {
		label string
		gauge bool
	}
	wanted := map[string]want{} // by metric
	stageNumbers, sinkNumbers := map[string]int64{}, map[string]int64{}
	for _, typ := range stages.Types() {
		for _, c := range typ.Counters {
			stageNumbers[c.Key] = 7
			if c.Metric != "" {
				wanted["pythia_pipe_"+c.Metric] = want{"stage", c.Gauge}
			}
		}
	}
	for _, typ := range sinks.Registry() {
		for _, c := range typ.Counters {
			sinkNumbers[c.Key] = 7
			wanted["pythia_pipe_"+c.Metric] = want{"sink", c.Gauge}
		}
	}
	m := metrics.New(&pipeline.Pipeline{Name: "p"})
	m.Watch(fakeEngine{engine.Stats{"s": {Kind: "stage", Stage: stageNumbers}, "k": {Kind: "sink", Stage: sinkNumbers}}}, fakeSource{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		w, ok := wanted[f.GetName()]
		if !ok {
			continue
		}
		delete(wanted, f.GetName())
		if gauge := f.GetType() == dto.MetricType_GAUGE; gauge != w.gauge {
			t.Errorf("%s is a %v", f.GetName(), f.GetType())
		}
		owner := map[string]string{"stage": "s", "sink": "k"}[w.label]
		if len(f.Metric) != 1 || len(f.Metric[0].Label) != 2 || f.Metric[0].Label[1].GetName() != w.label || f.Metric[0].Label[1].GetValue() != owner {
			t.Errorf("%s: %v, want one metric labelled %s=%s", f.GetName(), f.Metric, w.label, owner)
		}
	}
	for name := range wanted {
		t.Errorf("%s is not exported", name)
	}
}

type abortingSource struct{}

func (abortingSource) Stats() sources.Stats {
	return sources.Stats{Joined: true, Assigned: 1, Commits: 40, Aborts: 3, AbortsBy: map[string]int64{"deadline": 2, "write": 1}}
}

// Aborted transactions are one figure with its reasons: a metric labelled by reason and the
// progress line, so that a pipeline aborting in a loop shows within a line.
func TestAbortedTransactions(t *testing.T) {
	m := metrics.New(&pipeline.Pipeline{Name: "p", Entry: []string{"first"}})
	m.Watch(fakeEngine{engine.Stats{"first": {Kind: "stage"}}}, abortingSource{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "pythia_pipe_transactions_aborted_total" {
			continue
		}
		for _, mt := range f.Metric {
			for _, l := range mt.Label {
				if l.GetName() == "reason" {
					got[l.GetValue()] = mt.GetCounter().GetValue()
				}
			}
		}
	}
	want := map[string]float64{"deadline": 2, "write": 1, "revoke": 0, "commit": 0, "stop": 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("transactions_aborted_total by reason %v, want %v", got, want)
	}
	line := firstProgressLine(t, m)
	if line["txn_aborted"] != 3.0 || line["txn_aborted_by"] != "deadline=2 write=1" || line["txn_committed"] != 40.0 {
		t.Errorf("progress line %v", line)
	}
}

// While a stateful stage's store is restored from its changelog, /readyz answers 503 and
// says so, and the progress line shows it; then /readyz turns ready.
func TestReadyzWhileRestoring(t *testing.T) {
	for _, c := range []struct {
		name  string
		stage map[string]int64
		code  int
		says  string
	}{
		{"restoring", map[string]int64{"restoring": 2, "restored": 120_000}, http.StatusServiceUnavailable,
			"not ready: restoring stage once: 2 partitions, 120000 records restored"},
		{"restored", map[string]int64{"restoring": 0, "restored": 120_000}, http.StatusOK, "ready"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := metrics.New(&pipeline.Pipeline{Name: "p", Entry: []string{"once"}})
			m.Watch(fakeEngine{engine.Stats{"once": {Kind: "stage", Stage: c.stage}}}, fakeSource{})
			srv := httptest.NewServer(m.Handler())
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code || !strings.Contains(string(body), c.says) {
				t.Errorf("/readyz %d %q, want %d %q", resp.StatusCode, body, c.code, c.says)
			}
			line := firstProgressLine(t, m)
			if got, _ := line["restoring"].(string); (c.code == http.StatusOK) != (got == "") {
				t.Errorf("progress line restoring = %q", got)
			}
		})
	}
}
