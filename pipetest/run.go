package pipetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pythia-pipe/pythia-pipe/devkit/devregistry"
	"github.com/pythia-pipe/pythia-pipe/engine"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/state"
)

// Result is what one case did: no failures is a pass.
type Result struct {
	Case     Case
	Failures []string
	Took     time.Duration
}

// replaced are the settings a test does without: it has no broker, and its schema registry
// is in process, one afresh per case.
var replaced = append([]string{"kafka.brokers", "kafka.security"}, devregistry.Unused...)

// caseTimeout bounds one case: a pipeline that waits (an enrich whose service is down, with
// no max_outage) would otherwise wait for ever.
const caseTimeout = 30 * time.Second

// Run runs every case of f, each on the pipeline built afresh, so that no state (caches,
// breakers) passes from one to the next. The error is what Check finds: a pipeline that does
// not load (its diagnostics, printed), a sink that is not the pipeline's.
func Run(ctx context.Context, f *File, log *slog.Logger) ([]Result, error) {
	src, opts, p, err := f.pipeline()
	if err != nil {
		return nil, err
	}
	if err := f.checkSinks(p); err != nil {
		return nil, err
	}
	var results []Result
	for _, c := range f.Cases {
		mocks := &mockTransport{mocks: append(append([]Mock(nil), c.Mocks...), f.Mocks...)}
		opts.HTTP = mocks
		reg := devregistry.New()
		opts.Registry = reg.Options()
		p, _ := pipeline.Parse(f.Pipeline, src, opts)
		began := time.Now()
		failures := runCase(ctx, p, c, f.Tables, reg, log)
		for _, call := range mocks.unmatched {
			failures = append(failures, "no mock answers "+call+" (add one under mocks:)")
		}
		results = append(results, Result{Case: c, Failures: failures, Took: time.Since(began)})
	}
	return results, nil
}

// Check is what can be known of f without running it: its pipeline is valid and every sink
// its cases expect records of is one of the pipeline's.
func Check(f *File) error {
	_, _, p, err := f.pipeline()
	if err != nil {
		return err
	}
	return f.checkSinks(p)
}

// checkSinks says every case that expects records of a sink p does not have.
func (f *File) checkSinks(p *pipeline.Pipeline) error {
	names := sinkNames(p)
	var problems []*Problem
	for _, c := range f.Cases {
		for sink := range c.Expect {
			if !slices.Contains(names, sink) {
				problems = append(problems, &Problem{File: f.Path, Line: c.Line,
					Msg: fmt.Sprintf("case %q: expect names %q, which is no sink of %s (%s)", c.Name, sink, f.Pipeline, strings.Join(names, ", "))})
			}
		}
	}
	sort.Slice(problems, func(i, j int) bool {
		if problems[i].Line != problems[j].Line {
			return problems[i].Line < problems[j].Line
		}
		return problems[i].Msg < problems[j].Msg
	})
	var errs []error
	for _, p := range problems {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// pipeline reads f's pipeline and builds it: its text, the options it is built with (a case
// adds its mocks) and the pipeline, or its diagnostics as the error.
func (f *File) pipeline() ([]byte, pipeline.Options, *pipeline.Pipeline, error) {
	src, err := os.ReadFile(f.Pipeline)
	if err != nil {
		return nil, pipeline.Options{}, nil, &Problem{File: f.Path, Msg: err.Error()}
	}
	opts := pipeline.Options{BaseDir: filepath.Dir(f.Pipeline), Unused: replaced, Env: func(name string) (string, bool) {
		if v, ok := f.Env[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}}
	opts.Registry = devregistry.New().Options()
	p, diags := pipeline.Parse(f.Pipeline, src, opts)
	if len(diags) > 0 {
		return nil, opts, nil, &InvalidPipelineError{Test: f.Path, Pipeline: f.Pipeline, Diags: diags, Src: src}
	}
	return src, opts, p, nil
}

// output is a record a sink received, with the input it came from.
type output struct {
	input   int // its index in the case's input
	written sinks.Written
}

// collector is the sinks of one case: each renders what it receives as its type would write
// it, and keeps it.
type collector struct {
	mu  sync.Mutex
	got map[string][]output
}

func (c *collector) open(name string, sk sinks.Compiled, report sinks.Report) (sinks.Sink, error) {
	r, ok := sk.(sinks.Renderer)
	if !ok {
		return nil, fmt.Errorf("sink %s: its type cannot be tested", name)
	}
	s := &testSink{c: c, name: name, render: r, report: report}
	if sh, ok := sk.(sinks.SchemaHolder); ok {
		s.schema = sh.BodySchema()
	}
	return s, nil
}

type testSink struct {
	c      *collector
	name   string
	render sinks.Renderer
	report sinks.Report
	schema *sinks.SchemaEncoder // encode avro, protobuf: bodies are read back to be compared
}

func (s *testSink) Write(_ context.Context, recs []*record.Record) error {
	for _, r := range recs {
		w, err := s.render.Render(r)
		if err != nil {
			s.report(r, err) // the engine judges it, as it would a Kafka sink's refusal
			continue
		}
		if v, ok := s.schema.Decode(w.Value); ok {
			w.Value, _ = record.AppendJSON(nil, v) // compared as the values written
		}
		s.c.mu.Lock()
		s.c.got[s.name] = append(s.c.got[s.name], output{input: int(r.Offset), written: w})
		s.c.mu.Unlock()
		s.report(r, nil)
	}
	return nil
}

func (s *testSink) Close(context.Context) error { return nil }

// runCase feeds the case's input to p and compares what each sink received with what it
// expects.
func runCase(ctx context.Context, p *pipeline.Pipeline, c Case, tables map[string][]TableRecord, reg *devregistry.Registry, log *slog.Logger) []string {
	topic := ""
	if k := p.KafkaSource(); k != nil && len(k.Topics) > 0 {
		topic = k.Topics[0]
	}
	recs := make([]*record.Record, len(c.Input))
	for i, in := range c.Input {
		recs[i] = &record.Record{Key: in.Key, Value: in.Value, Timestamp: in.Timestamp, Topic: topic, Offset: int64(i)}
		names := make([]string, 0, len(in.Headers))
		for k := range in.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			recs[i].Headers = append(recs[i].Headers, record.Header{Key: k, Value: []byte(in.Headers[k])})
		}
	}
	if failures := framed(ctx, p, reg, c.Input, recs); len(failures) > 0 {
		return failures
	}
	tables, unframed := framedTables(ctx, p, tables)
	if len(unframed) > 0 {
		return unframed
	}
	col := &collector{got: map[string][]output{}}
	e, err := engine.NewEngine(p, col.open, log)
	if err != nil {
		return []string{err.Error()}
	}
	e.UseState(engine.StateOptions{Table: func(topic string) state.TableTopic {
		var m engine.MemoryTable
		for _, r := range tables[topic] {
			m = append(m, [2][]byte{r.Key, r.Value})
		}
		return m
	}})
	ctx, cancel := context.WithTimeout(ctx, caseTimeout)
	defer cancel()
	runErr := e.Run(ctx, &engine.MemorySource{Records: recs}, 5*time.Second)
	var failures []string
	switch {
	case ctx.Err() != nil:
		return []string{fmt.Sprintf("not done within %v: is a stage waiting for a service?", caseTimeout)}
	case runErr != nil && c.Stops == "":
		failures = append(failures, "the pipeline stopped: "+runErr.Error())
	case runErr == nil && c.Stops != "":
		failures = append(failures, fmt.Sprintf("the pipeline did not stop (expected it to stop with %q)", c.Stops))
	case runErr != nil && !strings.Contains(runErr.Error(), c.Stops):
		failures = append(failures, fmt.Sprintf("the pipeline stopped with %q, not with %q", runErr.Error(), c.Stops))
	}
	reached := map[int]bool{}
	for _, sink := range sinkNames(p) {
		got := col.got[sink]
		sort.SliceStable(got, func(i, j int) bool { return got[i].input < got[j].input })
		for _, o := range got {
			reached[o.input] = true
		}
		failures = append(failures, compareSink(sink, c.Expect[sink], got)...)
	}
	if c.Dropped != nil && len(c.Input)-len(reached) != *c.Dropped {
		failures = append(failures, fmt.Sprintf("dropped: expected %d input record(s) to reach no sink, %d did", *c.Dropped, len(c.Input)-len(reached)))
	}
	return failures
}

func sinkNames(p *pipeline.Pipeline) []string {
	var names []string
	for _, s := range p.Sinks {
		names = append(names, s.Name)
	}
	if p.DLQ != nil {
		names = append(names, "dlq")
	}
	return names
}
