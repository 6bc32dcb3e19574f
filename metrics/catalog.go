package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// fixedMetrics are the metrics of the counters the engine keeps around every stage and sink,
// and of the source's: their names after pythia_pipe_, help and labels.
var fixedMetrics = []struct {
	name, help string
	labels     []string
}{
	{"stage_received_total", "Records a stage processed.", stageLabel},
	{"stage_emitted_total", "Records a stage emitted.", stageLabel},
	{"stage_dropped_total", "Records a stage filtered out.", stageLabel},
	{"stage_errors_total", "Records a stage failed.", stageLabel},
	{"sink_acked_total", "Records a sink's broker acknowledged.", sinkLabel},
	{"sink_failed_total", "Records a sink could not write.", sinkLabel},
	{"dlq_total", "Records sent to the dead-letter queue, by the stage or sink that failed them.", stageLabel},
	{"partition_lag", "Records in the partition past the committed position.", partitionLabels},
	{"partition_pending", "Records read and not yet committed.", partitionLabels},
	{"partition_committed_offset", "The partition's commit point (the next offset to read).", partitionLabels},
	{"partition_oldest_pending_seconds", "How long ago the oldest record not yet committed was read (0 with none pending).", partitionLabels},
	{"partition_stalled", "1 when the commit point has not moved for stall_timeout while records are pending (and /healthz fails), else 0.", partitionLabels},
	{"commits_total", "Offset commits sent (under exactly_once: transactions committed).", nil},
	{"transactions_aborted_total", "Under exactly_once: transactions aborted, by reason: deadline (records not done within 80% of transaction_timeout), write (a write failed), revoke (partitions revoked or lost), commit (the end not confirmed, or the group moved on), stop; their records are read again.", []string{"reason"}},
	{"source_wait_seconds", "How long the source has waited on Kafka (0: not waiting): under at_least_once, for offset commits failing in a row; under exactly_once, for the open transaction's end, its records' writes acknowledged or its commit confirmed; in either, before its first assignment, for the group to take it in. From 5 s the progress line and /healthz say what it waits for.", nil},
	{"rebalances_total", "Group rebalances this member took part in (generations joined after its first).", nil},
	{"assigned_partitions", "Partitions this member owns.", nil},
	{"records_pending", "Records read and not yet done, over every partition (under exactly_once: the open transaction's).", nil},
	{"pending_bytes", "Weight of the records read and not yet done, over every partition: their keys, values and headers plus 512 bytes each; max_pending_bytes bounds it.", nil},
}

var (
	stageLabel      = []string{"stage"}
	sinkLabel       = []string{"sink"}
	partitionLabels = []string{"topic", "partition"}
)

// ownMetric is the metric a number of a stage's or sink's own is exported as.
type ownMetric struct {
	name string
	kind prometheus.ValueType
}

// ownNumber is a number a stage or sink keeps of its own, as its type describes it, and the
// label naming its owner.
type ownNumber struct {
	spec.Counter
	label string
}

// ownNumbers are the exported numbers every stage type and the sinks describe: a new stage
// type's numbers are exported by declaring them in its Type, with nothing to add here. Two
// declarations of one key must agree, since the engine reports numbers by key alone (a retry
// reports its inner stage's); a disagreement is a programming error, and panics.
func ownNumbers() []ownNumber {
	var out []ownNumber
	seen := map[string]spec.Counter{}
	add := func(label string, counters []spec.Counter) {
		for _, c := range counters {
			if c.Metric == "" {
				continue // kept for the progress line, not exported
			}
			if prev, ok := seen[c.Key]; ok {
				if prev != c {
					panic(fmt.Sprintf("metrics: the number %q is described twice, as %s and as %s", c.Key, prev.Metric, c.Metric))
				}
				continue
			}
			seen[c.Key] = c
			out = append(out, ownNumber{Counter: c, label: label})
		}
	}
	for _, t := range stages.Types() {
		add("stage", t.Counters)
	}
	for _, name := range sinks.TypeNames() {
		add("sink", sinks.Registry()[name].Counters)
	}
	return out
}
