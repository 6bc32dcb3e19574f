package spec

// Counter describes one number a stage or sink keeps of its own (its Counters() map: cache
// hits, retries, writes the broker refused) and the metric that exports it. It is plain data,
// declared beside the fields of the stage type or sink: stage and sink code never touches
// Prometheus, and the metrics package makes its descriptors from these.
type Counter struct {
	Key    string // the number's key in Counters()
	Metric string // the metric's name after pythia_pipe_; "" keeps the number off /metrics (the progress line reads it)
	Help   string // the metric's help text
	Gauge  bool   // a level that goes up and down; false: a total that only grows
}
