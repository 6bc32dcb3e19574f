// Package metrics exports a running pipeline to Prometheus — the engine's counters around
// every stage and sink, the source's partitions, stage durations and end-to-end latency —
// serves /metrics, /healthz and /readyz, and logs a progress line.
package metrics

import (
	"strconv"
	"time"

	"github.com/pythia-pipe/pythia-pipe/engine"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// Engine is what the metrics read from the engine.
type Engine interface{ Stats() engine.Stats }

// Source is what the metrics read from the source.
type Source interface{ Stats() sources.Stats }

// Metrics is one pipeline's registry. It is the engine's Observer and reads the engine's and
// the source's counters when scraped.
type Metrics struct {
	reg      *prometheus.Registry
	pipeline string
	engine   Engine
	source   Source
	stageDur *prometheus.HistogramVec
	latency  *prometheus.HistogramVec
	descs    map[string]*prometheus.Desc // by name after pythia_pipe_
	own      map[string]ownMetric        // by the key of a number a stage or sink keeps of its own
	entry    []string                    // where the source's records go first
}

// New makes the registry of pipeline p, with the Go runtime and process collectors.
func New(p *pipeline.Pipeline) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), pipeline: p.Name, descs: map[string]*prometheus.Desc{}, own: map[string]ownMetric{}, entry: p.Entry}
	labels := prometheus.Labels{"pipeline": p.Name}
	m.stageDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pythia_pipe_stage_duration_seconds",
		Help: "Time a stage took per record, observed once per batch (its time over the batch divided by its records; a retry: once per record).", ConstLabels: labels,
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12)}, []string{"stage"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pythia_pipe_end_to_end_latency_seconds",
		Help: "From a record's timestamp to its sink's acknowledgement.", ConstLabels: labels,
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}, []string{"sink"})
	for _, f := range fixedMetrics {
		m.descs[f.name] = prometheus.NewDesc("pythia_pipe_"+f.name, f.help, f.labels, labels)
	}
	for _, o := range ownNumbers() {
		kind := prometheus.CounterValue
		if o.Gauge {
			kind = prometheus.GaugeValue
		}
		m.own[o.Key] = ownMetric{name: o.Metric, kind: kind}
		m.descs[o.Metric] = prometheus.NewDesc("pythia_pipe_"+o.Metric, o.Help, []string{o.label}, labels)
	}
	m.reg.MustRegister(m.stageDur, m.latency, m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Names lists the names of the metrics a pipeline exports (histograms without their
// _bucket, _sum and _count suffixes), for the dashboard and the docs.
func Names() []string {
	m := New(&pipeline.Pipeline{Name: "names"})
	families, _ := m.reg.Gather()
	var out []string
	for _, f := range families {
		out = append(out, f.GetName())
	}
	for name := range m.descs {
		out = append(out, "pythia_pipe_"+name)
	}
	return append(out, "pythia_pipe_stage_duration_seconds", "pythia_pipe_end_to_end_latency_seconds")
}

// Watch points the registry at the running engine and source.
func (m *Metrics) Watch(e Engine, s Source) { m.engine, m.source = e, s }

// StageDurations implements engine.Observer.
func (m *Metrics) StageDurations(stage string) func(time.Duration) {
	h := m.stageDur.WithLabelValues(stage)
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}

// Latencies implements engine.Observer.
func (m *Metrics) Latencies(sink string) func(time.Duration) {
	h := m.latency.WithLabelValues(sink)
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads the counters at scrape time.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	emit := func(name string, kind prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], kind, v, labels...)
	}
	if m.engine != nil {
		for name, s := range m.engine.Stats() {
			switch s.Kind {
			case "sink", "dlq", "changelog", "repartition":
				emit("sink_acked_total", prometheus.CounterValue, float64(s.Acked), name)
				emit("sink_failed_total", prometheus.CounterValue, float64(s.Failed), name)
			default:
				emit("stage_received_total", prometheus.CounterValue, float64(s.Received), name)
				emit("stage_emitted_total", prometheus.CounterValue, float64(s.Emitted), name)
				emit("stage_dropped_total", prometheus.CounterValue, float64(s.Dropped), name)
				emit("stage_errors_total", prometheus.CounterValue, float64(s.Errors), name)
			}
			if s.Kind != "dlq" {
				emit("dlq_total", prometheus.CounterValue, float64(s.DeadLettered), name)
			}
			for k, v := range s.Stage {
				if sm, ok := m.own[k]; ok {
					emit(sm.name, sm.kind, float64(v), name)
				}
			}
		}
	}
	if m.source != nil {
		s := m.source.Stats()
		emit("commits_total", prometheus.CounterValue, float64(s.Commits))
		for _, reason := range sources.AbortReasons {
			emit("transactions_aborted_total", prometheus.CounterValue, float64(s.AbortsBy[reason]), reason)
		}
		emit("rebalances_total", prometheus.CounterValue, float64(s.Rebalances))
		emit("assigned_partitions", prometheus.GaugeValue, float64(s.Assigned))
		emit("pending_bytes", prometheus.GaugeValue, float64(s.PendingBytes))
		emit("records_pending", prometheus.GaugeValue, float64(s.Pending))
		emit("source_wait_seconds", prometheus.GaugeValue, s.WaitingFor.Seconds())
		for _, p := range s.Partitions {
			part := strconv.Itoa(int(p.Partition))
			emit("partition_lag", prometheus.GaugeValue, float64(p.Lag), p.Topic, part)
			emit("partition_pending", prometheus.GaugeValue, float64(p.Pending), p.Topic, part)
			emit("partition_committed_offset", prometheus.GaugeValue, float64(p.Position), p.Topic, part)
			emit("partition_oldest_pending_seconds", prometheus.GaugeValue, p.OldestPending.Seconds(), p.Topic, part)
			stalled := 0.0
			if p.Stalled {
				stalled = 1
			}
			emit("partition_stalled", prometheus.GaugeValue, stalled, p.Topic, part)
		}
	}
}
