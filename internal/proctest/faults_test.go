//go:build !e2e

package proctest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// The fault-injection harness: one table of scenarios, each a pipeline run by the built binary
// against the in-process broker while it answers chosen requests with errors (kfake faults).
// Every scenario asserts the same promises: nothing is lost; records of one key reach every
// sink in source order; the DLQ holds exactly the records at fault, each with its reason; and
// SIGTERM ends the run with exit 0 within drain_timeout plus a margin.

// faultHead is the start of every scenario's pipeline: a source with timeouts short enough
// for tests.
const faultHead = `version: 1
name: faults
kafka: {brokers: "${KAFKA_BROKERS}", client: "${KAFKA_CLIENT:-franz-go}"}
source:
  type: kafka
  topics: [in]
  session_timeout: 3s
  heartbeat_interval: 500ms
  rebalance_timeout: 20s
  drain_timeout: 5s
  commit_interval: 200ms
  max_pending: 2000
`

const (
	faultGroup = "faults"
	faultDrain = 5 * time.Second
	// sigtermMargin is what a run may take after SIGTERM beyond drain_timeout: the sinks'
	// close grace and process exit, on a loaded machine with the race detector.
	sigtermMargin = 10 * time.Second
)

// fate is where a record of the feed must end: a sink topic, the DLQ (with a phrase its
// pythia.error must hold), or nowhere (dropped).
type fate struct {
	topic  string
	reason string
}

type faultTopic struct {
	name       string
	partitions int32
	configs    map[string]string
}

type scenario struct {
	name       string
	brokerOpts []kfake.Opt
	topics     []faultTopic // "in" has 3 partitions unless listed
	rest       string       // the pipeline after faultHead: stages, sinks, dlq
	feed       []devbroker.Record
	fate       func(seq int) fate
	// during runs while the pipeline runs: it injects the faults.
	during func(r *faultRun)
	// check makes the scenario's own checks after the run.
	check func(r *faultRun, out map[string][]devbroker.Record)
}

// faultRun is a scenario being run: the broker, the pythia-pipe process, what it logged.
type faultRun struct {
	t       *testing.T
	b       *devbroker.Broker
	file    string
	outputs []string
	proc    *testproc.Proc
	logs    []string // the output of processes that ended
}

// written counts the records in the output topics.
func (r *faultRun) written() int64 {
	var n int64
	for _, topic := range r.outputs {
		for _, end := range r.b.EndOffsets(topic) {
			n += end
		}
	}
	return n
}

// sigterm stops the process and expects exit 0 within drain_timeout and a margin.
func (r *faultRun) sigterm() {
	r.t.Helper()
	stopped := time.Now()
	r.proc.Signal(r.t, syscall.SIGTERM)
	if code := r.proc.Wait(r.t, faultDrain+sigtermMargin); code != 0 {
		r.t.Fatalf("exit %d after SIGTERM", code)
	}
	r.t.Logf("SIGTERM to exit: %v", time.Since(stopped).Round(time.Millisecond))
	r.logs = append(r.logs, r.proc.Output())
}

// output is everything the processes of the run logged.
func (r *faultRun) output() string { return strings.Join(append(r.logs, r.proc.Output()), "") }

// keyedFeed makes n records with keys k0..k(keys-1), each with its seq header and a body
// built by body.
func keyedFeed(n, keys int, body func(i int) string) []devbroker.Record {
	recs := make([]devbroker.Record, n)
	for i := range recs {
		recs[i] = devbroker.Record{Key: []byte(fmt.Sprintf("k%d", i%keys)), Value: []byte(body(i)),
			Headers: map[string]string{"seq": strconv.Itoa(i)}, Timestamp: time.UnixMilli(1700000000000 + int64(i))}
	}
	return recs
}

// faultRecords is the size of the feed of the produce-error scenarios (FAULT_RECORDS sets it).
func faultRecords(t *testing.T, def int) int {
	if s := os.Getenv("FAULT_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("FAULT_RECORDS=%q: %v", s, err)
		}
		return n
	}
	return def
}

// oversize is the size of the padding of record i of the oversized scenario: 0 for most.
func oversize(i int) int {
	switch {
	case i == 50:
		return 2 << 20
	case i%100 == 7:
		return 200_000
	}
	return 0
}

// computedTopic is where record i of the computed-topics scenario asks to go.
func computedTopic(i int) string {
	switch i % 50 {
	case 5:
		return "out-e u!"
	case 6:
		return "out-missing"
	case 7:
		return "secret"
	}
	return [...]string{"out-a", "out-b"}[i%2]
}

// refuse makes the broker answer produce requests to topic with code, once the pipeline has
// written at least after records; it returns when the first request was refused.
func refuse(r *faultRun, topic string, code *kerr.Error, after int64) *kfake.FaultHandle {
	r.t.Helper()
	waitFor(r.t, 120*time.Second, "records written before the fault", func() bool { return r.written() >= after })
	f := r.b.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: code, Count: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.Wait(ctx, 1); err != nil {
		r.t.Fatalf("no produce request to %s met the fault: %v", topic, err)
	}
	return f
}

// window makes the broker refuse produce requests to topic with code for d, once the
// pipeline has written at least after records.
func window(topic string, code *kerr.Error, after int64, d time.Duration) func(*faultRun) {
	return func(r *faultRun) {
		f := refuse(r, topic, code, after)
		time.Sleep(d) // the length of the outage, not a wait for a condition
		f.Remove()
		r.t.Logf("%s refused %d produce requests with %s for %v", topic, f.Hits(), code.Message, d)
	}
}

// sigtermInOutage stops the pipeline while topic refuses writes, then runs it again once the
// outage is over.
func sigtermInOutage(topic string, after int64) func(*faultRun) {
	return func(r *faultRun) {
		f := refuse(r, topic, kerr.NotEnoughReplicas, after)
		waitFor(r.t, 60*time.Second, "the sink to hold its refused writes", func() bool {
			return strings.Contains(r.proc.Output(), "the broker refuses writes")
		})
		r.sigterm()
		f.Remove()
		r.proc = start(r.t, r.b, "restart", "run", r.file)
	}
}

func TestFaults(t *testing.T) {
	n := faultRecords(t, 50_000)
	const keys = 500
	plain := func(i int) string { return fmt.Sprintf(`{"n":%d}`, i) }
	badEvery10 := func(i int) string {
		if i%10 == 3 {
			return fmt.Sprintf(`{"n":%d,`, i)
		}
		return plain(i)
	}
	keyedPipeline := `stages:
  - {name: parse, type: decode, schema: {n: int}}
  - {name: tag, type: map, set: {double: msg.n * 2}}
sinks:
  - {name: out, type: kafka, topic: out}
dlq: {type: kafka, topic: dlq}
`
	toOut := func(int) fate { return fate{topic: "out"} }
	scenarios := []scenario{
		{
			name:   "output refuses writes for 2s",
			topics: []faultTopic{{name: "out", partitions: 3}, {name: "dlq", partitions: 1}},
			rest:   keyedPipeline,
			feed:   keyedFeed(n, keys, plain),
			fate:   toOut,
			during: window("out", kerr.NotEnoughReplicas, int64(n/5), 2*time.Second),
			check: func(r *faultRun, out map[string][]devbroker.Record) {
				if inv := devbroker.Inversions(out["out"], false); inv > 0 {
					r.t.Errorf("out: %d records first written after a later record of their key", inv)
				}
			},
		},
		{
			// Longer than the producer retries by itself: the sink's order guard takes over.
			name:   "output refuses writes for 12s",
			topics: []faultTopic{{name: "out", partitions: 3}, {name: "dlq", partitions: 1}},
			rest:   keyedPipeline,
			feed:   keyedFeed(n/2, keys, plain),
			fate:   toOut,
			during: window("out", kerr.NotEnoughReplicas, int64(n/10), 12*time.Second),
			check: func(r *faultRun, out map[string][]devbroker.Record) {
				logs, said := r.output(), 0
				for _, out := range append(r.logs, r.proc.Output()) {
					times := loggedAt(out, "the broker refuses writes")
					said += len(times)
					for i := 1; i < len(times); i++ {
						if gap := times[i].Sub(times[i-1]); gap < 9*time.Second {
							r.t.Errorf("the refusals were said %v apart; want at most once per 10 s", gap)
						}
					}
				}
				if said == 0 {
					r.t.Error("the refusals of a 12 s outage were never said")
				}
				// A write the broker took while an earlier one of its partition was refused is
				// written again after it; only those may first appear out of order.
				if inv, again := devbroker.Inversions(out["out"], false), testproc.LogMax(logs, "rewritten"); inv > again {
					r.t.Errorf("out: %d records first written out of order, but only %d were written again", inv, again)
				} else {
					r.t.Logf("out: %d records first written out of order, %d written again after them", inv, again)
				}
			},
		},
		{
			name:   "sigterm while the output refuses writes",
			topics: []faultTopic{{name: "out", partitions: 3}, {name: "dlq", partitions: 1}},
			rest:   keyedPipeline,
			feed:   keyedFeed(n/2, keys, plain),
			fate:   toOut,
			during: sigtermInOutage("out", int64(n/10)),
		},
		{
			// Records of 200 KB are too large for out (max.message.bytes 100000, read at start);
			// one of 2 MB is too large for the DLQ as well, which cuts its value.
			name: "oversized records",
			topics: []faultTopic{{name: "in", partitions: 3, configs: map[string]string{"max.message.bytes": "8388608"}},
				{name: "out", partitions: 3, configs: map[string]string{"max.message.bytes": "100000"}}, {name: "dlq", partitions: 1}},
			rest: `stages:
  - {name: parse, type: decode, schema: {n: int, pad: string}}
sinks:
  - {name: out, type: kafka, topic: out}
dlq: {type: kafka, topic: dlq}
`,
			feed: keyedFeed(n/10, keys, func(i int) string {
				return fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", oversize(i)))
			}),
			fate: func(seq int) fate {
				if oversize(seq) > 0 {
					return fate{topic: "dlq", reason: "bytes, more than the 100000 topic out takes"}
				}
				return fate{topic: "out"}
			},
			check: func(r *faultRun, out map[string][]devbroker.Record) {
				for _, d := range out["dlq"] {
					seq, _ := strconv.Atoi(d.Headers["seq"])
					cut, original := d.Headers["pythia.truncated"], d.Headers["pythia.original_bytes"]
					switch {
					case oversize(seq) > 1<<20 && (cut != "value" || len(d.Value) >= 1<<20 || original == ""):
						r.t.Errorf("record %d (%d bytes) in the DLQ: truncated %q, %d bytes kept, original %q", seq, oversize(seq), cut, len(d.Value), original)
					case oversize(seq) <= 1<<20 && (cut != "" || !strings.HasSuffix(string(d.Value), `"}`)):
						r.t.Errorf("record %d was cut in the DLQ although it fits: truncated %q", seq, cut)
					}
				}
			},
		},
		{
			name:       "computed topics",
			brokerOpts: []kfake.Opt{kfake.AllowAutoTopicCreation()}, // the pipeline must not ask for it
			topics: []faultTopic{{name: "out-a", partitions: 3}, {name: "out-b", partitions: 2},
				{name: "secret", partitions: 1}, {name: "dlq", partitions: 1}},
			rest: `stages:
  - {name: parse, type: decode, schema: {n: int, to: string}}
sinks:
  - {name: out, type: kafka, topic_expr: msg.to, topic_allow: ["out-*"]}
dlq: {type: kafka, topic: dlq}
`,
			feed: keyedFeed(n/10, keys, func(i int) string { return fmt.Sprintf(`{"n":%d,"to":%q}`, i, computedTopic(i)) }),
			fate: func(seq int) fate {
				switch computedTopic(seq) {
				case "out-e u!":
					return fate{topic: "dlq", reason: "has a character Kafka does not allow"}
				case "out-missing":
					return fate{topic: "dlq", reason: "does not exist, and records never create topics"}
				case "secret":
					return fate{topic: "dlq", reason: "not in the sink's topic_allow"}
				}
				return fate{topic: computedTopic(seq)}
			},
			check: func(r *faultRun, _ map[string][]devbroker.Record) {
				if r.b.Cluster.TopicInfo("out-missing") != nil {
					r.t.Error("a record created the topic it computed")
				}
			},
		},
		{
			// The retried stage changes the key: the key's later records must not wait forever.
			name:   "retry around a re-keying map",
			topics: []faultTopic{{name: "out", partitions: 3}, {name: "dlq", partitions: 1}},
			rest: `stages:
  - {name: parse, type: decode, schema: {n: int, customer: string}}
  - name: rekey
    type: retry
    workers: 4
    stage: {type: map, key: msg.customer}
sinks:
  - {name: out, type: kafka, topic: out}
dlq: {type: kafka, topic: dlq}
`,
			feed: keyedFeed(n/5, keys, func(i int) string { return fmt.Sprintf(`{"n":%d,"customer":"c%d"}`, i, i%keys) }),
			fate: toOut,
			check: func(r *faultRun, out map[string][]devbroker.Record) {
				for _, o := range out["out"] {
					if !strings.HasPrefix(string(o.Key), "c") {
						r.t.Fatalf("record %s kept its key %q", o.Headers["seq"], o.Key)
					}
				}
			},
		},
		{
			name:   "dlq refuses writes for 2s",
			topics: []faultTopic{{name: "out", partitions: 3}, {name: "dlq", partitions: 1}},
			rest:   keyedPipeline,
			feed:   keyedFeed(n/5, keys, badEvery10),
			fate: func(seq int) fate {
				if seq%10 == 3 {
					return fate{topic: "dlq", reason: "decode json"}
				}
				return fate{topic: "out"}
			},
			// From the start: the whole feed can be through before a later fault is installed.
			during: window("dlq", kerr.NotEnoughReplicas, 0, 2*time.Second),
		},
	}
	eachClient(t, func(t *testing.T) {
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) { runScenario(t, sc) })
		}
	})
}

func runScenario(t *testing.T, sc scenario) {
	b, err := devbroker.Start(append([]kfake.Opt{kfake.GroupMinSessionTimeout(500 * time.Millisecond)}, sc.brokerOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	var outputs []string
	for _, tp := range sc.topics {
		if err := b.CreateTopicWith(tp.name, tp.partitions, tp.configs); err != nil {
			t.Fatal(err)
		}
		if tp.name != "in" {
			outputs = append(outputs, tp.name)
		}
	}
	if err := b.CreateTopic("in", 3); err != nil {
		t.Fatal(err)
	}
	if err := b.Produce(context.Background(), "in", sc.feed, kgo.ProducerBatchMaxBytes(8<<20)); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "faults.yaml")
	if err := os.WriteFile(file, []byte(faultHead+sc.rest), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &faultRun{t: t, b: b, file: file, outputs: outputs}
	r.proc = start(t, b, "run", "run", file)
	if sc.during != nil {
		sc.during(r)
	}
	waitFor(t, 180*time.Second, "the group to commit the end of the feed", func() bool {
		if !r.proc.Running() {
			t.Fatalf("pythia-pipe exited on its own")
		}
		return b.CaughtUp(faultGroup, "in")
	})
	r.sigterm()

	out := map[string][]devbroker.Record{}
	for _, topic := range outputs {
		out[topic] = readInOrder(t, b, topic)
	}
	checkFates(t, sc, out)
	for _, topic := range outputs {
		if topic == "dlq" {
			continue
		}
		if inv := devbroker.Inversions(out[topic], true); inv > 0 {
			t.Errorf("%s: reading the last copy of each record, %d records of a key come after a later record of that key", topic, inv)
		} else {
			t.Logf("%s: %d records, per-key order kept", topic, len(out[topic]))
		}
	}
	if sc.check != nil {
		sc.check(r, out)
	}
}

// readInOrder reads topic and returns its records by partition, in offset order.
func readInOrder(t *testing.T, b *devbroker.Broker, topic string) []devbroker.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recs, err := b.Read(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	devbroker.ByPartition(recs)
	return recs
}

// checkFates asserts that every record of the feed is where its fate says, at least once
// (duplicates are at-least-once delivery), and nowhere else; DLQ records carry their reason.
func checkFates(t *testing.T, sc scenario, out map[string][]devbroker.Record) {
	t.Helper()
	seen := map[int]bool{}
	for topic, recs := range out {
		for _, r := range recs {
			seq, err := strconv.Atoi(r.Headers["seq"])
			if err != nil {
				t.Fatalf("%s: a record without its seq header: %v", topic, r.Headers)
			}
			want := sc.fate(seq)
			if want.topic != topic {
				t.Fatalf("record %d reached %s, want %q (pythia.error %q)", seq, topic, want.topic, r.Headers["pythia.error"])
			}
			if want.reason != "" && !strings.Contains(r.Headers["pythia.error"], want.reason) {
				t.Fatalf("record %d in %s: pythia.error %q does not say %q", seq, topic, r.Headers["pythia.error"], want.reason)
			}
			seen[seq] = true
		}
	}
	var missing []int
	for i := range sc.feed {
		if sc.fate(i).topic != "" && !seen[i] {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d records lost, the first %v", len(missing), missing[:min(10, len(missing))])
	}
}

// loggedAt is when a process logged each JSON line whose message starts with msg.
func loggedAt(output, msg string) []time.Time {
	var at []time.Time
	for _, line := range strings.Split(output, "\n") {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && strings.HasPrefix(l.Msg, msg) {
			at = append(at, l.Time)
		}
	}
	return at
}
