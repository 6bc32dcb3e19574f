package stages

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

const retryDoc = "Runs one inner stage (`stage`) and retries it with exponential backoff when it fails with a retryable error; after the last attempt, or at once for other errors, the record goes to the DLQ with its attempt count. An outage of an enrich's service (its breaker open) is waited out without using up attempts."

// RetryClasses are the error classes retry_on can name.
var RetryClasses = []string{"timeout", "connection", "http_5xx", "http_429", "any"}

// retryType is the retry stage type as the registry knows it; Types adds its fields, which
// name the types it may wrap.
func retryType() *Type {
	return &Type{Name: "retry", Doc: retryDoc, Build: buildRetry, Examples: retryExamples,
		Counters: []spec.Counter{{Key: "retries", Metric: "retries_total", Help: "Attempts after the first, by retry stage."}},
		Look:     Look{DOTShape: "doubleoctagon", MermaidOpen: "[[", MermaidClose: "]]", Detail: retryDetail}}
}

// retryDetail shows the attempts and the inner stage's type on a retry's label.
func retryDetail(f *spec.Value) (string, string) {
	inner := ""
	if n := f.Get("stage").Node; n != nil && n.Kind == yaml.MappingNode {
		for _, kv := range spec.MappingPairs(n) {
			if kv[0].Value == "type" {
				inner = kv[1].Value
			}
		}
	}
	return fmt.Sprintf(" ×%d: %s", f.Int("attempts"), inner), ""
}

// retryFields are a retry's fields; its `stage` names the types (of all types) it may wrap.
func retryFields(types []*Type) []spec.Field {
	return []spec.Field{
		spec.Raw("stage", "The inner stage: a mapping with `type` ("+typeList(types, func(t *Type) bool { return t.Retryable })+") and that type's fields.").Require(),
		spec.Int("attempts", "Attempts in all, the first included.").WithDefault("3").AtLeast(1).AtMost(1000),
		spec.Object("backoff", "Wait between attempts: initial, then times multiplier each time, at most max, spread by ±jitter.",
			spec.Duration("initial", "The first wait.").WithDefault("100ms"),
			spec.Duration("max", "The longest wait.").WithDefault("10s"),
			spec.Float("multiplier", "Growth of the wait from one attempt to the next.").WithDefault("2").AtLeast(1),
			spec.Float("jitter", "Random spread of each wait, as a fraction of it (0.2 = ±20%).").WithDefault("0.2").AtLeast(0).AtMost(1),
		),
		spec.List("retry_on", "Error classes that are retried; other errors go to the DLQ at once.",
			spec.Enum("class", "An error class.", RetryClasses...)).WithDefault("[timeout, connection, http_5xx, http_429]"),
	}
}

// innerFields are the fields a retry's inner stage has besides its type's.
var innerFields = []spec.Field{
	spec.String("type", "The inner stage type.").Require(),
}

// buildRetry validates a retry stage and builds it around its inner stage.
func buildRetry(c *Config) Built {
	sv := c.Fields.Get("stage")
	if !sv.Set {
		return Built{Out: c.In}
	}
	typ, inner := ParseStage(c.Parser, unnamed(c, sv), sv.Path, sv.Pos, innerFields, func(t *Type) bool { return t.Retryable })
	if typ == nil {
		return Built{Out: c.In}
	}
	b := c.Fields.Get("backoff")
	if b.Duration("max") < b.Duration("initial") {
		c.Parser.Errorf(b.Get("max").Pos, b.Get("max").Path, "max (%v) is shorter than initial (%v)", b.Duration("max"), b.Duration("initial"))
	}
	ic := *c // the wrapped stage reads what the retry reads
	ic.Fields = inner
	built := typ.Build(&ic)
	if built.Stage == nil {
		return Built{Out: built.Out}
	}
	r := &retry{inner: built.Stage, attempts: int(c.Fields.Int("attempts")), initial: b.Duration("initial"), max: b.Duration("max"),
		multiplier: b.Float("multiplier"), jitter: b.Float("jitter"), retryOn: map[string]bool{}, clock: realClock{}}
	for _, class := range c.Fields.Strings("retry_on") {
		r.retryOn[class] = true
	}
	return Built{Stage: r, Out: built.Out}
}

// unnamed is the inner stage's mapping without the name it may have been given, which is
// reported: the retry's name is the one the stage runs under.
func unnamed(c *Config, sv *spec.Value) *yaml.Node {
	n := spec.Resolve(sv.Node)
	if n == nil || n.Kind != yaml.MappingNode {
		return n
	}
	out := *n
	out.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Value == "name" {
			as := "as the retry"
			if name, ok := c.Fields.Lookup("name"); ok && name.Str != "" {
				as = "as stage " + name.Str
			}
			c.Parser.Errorf(c.Parser.Pos(k), sv.Path+".name", "a retry's inner stage has no name of its own (it runs %s): remove this line", as)
			continue
		}
		out.Content = append(out.Content, n.Content[i], n.Content[i+1])
	}
	return &out
}

// Clock is the time a retry waits on; tests give their own.
type Clock interface {
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// retry runs its inner stage until it succeeds, fails for a reason not in retry_on, or runs
// out of attempts. It is an AsyncStage: a record waiting for its next attempt holds up only
// the records of its own key.
type retry struct {
	inner      Stage
	attempts   int
	initial    time.Duration
	max        time.Duration
	multiplier float64
	jitter     float64
	retryOn    map[string]bool
	clock      Clock
	retries    atomic.Int64
	spent      *lru.Cache[readAt, spent] // nil unless KeepAttempts
}

// readAt is where a record was read: what names it when it is read again.
type readAt struct {
	topic     string
	partition int32
	offset    int64
}

// spent is what a retry spent on a record so far: its failed attempts and the last error.
type spent struct {
	failed int
	err    error
}

// Longest is the longest a record that fails every attempt spends in the retry: its backoffs
// at their longest (jitter included), and its attempts when the inner stage bounds one.
func (r *retry) Longest() time.Duration {
	var d time.Duration
	for n := 1; n < r.attempts; n++ {
		d += time.Duration(float64(failure.Backoff(n, r.initial, r.max, r.multiplier, 0)) * (1 + r.jitter))
	}
	if b, ok := r.inner.(Bounded); ok {
		d += time.Duration(r.attempts) * b.Longest()
	}
	return d
}

// KeepAttempts makes the retry remember the attempts spent on the last n records that
// failed one, so that a record read again goes on from where it was (see Resumable).
func (r *retry) KeepAttempts(n int) {
	r.spent, _ = lru.New[readAt, spent](n) // n > 0: New fails on nothing else
}

// RetryError is a record its retry stage gave up on, after Attempts attempts.
type RetryError struct {
	Tries     int
	Exhausted bool // false: the error was not one to retry
	Err       error
}

func (e *RetryError) Error() string {
	if e.Exhausted {
		return fmt.Sprintf("failed %d attempts: %v", e.Tries, e.Err)
	}
	return fmt.Sprintf("not retried (%s): %v", classText(e.Err), e.Err)
}
func (e *RetryError) Unwrap() error { return e.Err }

// Attempts is how many times the inner stage ran (the DLQ's pythia.attempts).
func (e *RetryError) Attempts() int { return e.Tries }

func classText(err error) string {
	if c := ErrorClass(err); c != "" {
		return c
	}
	return "not a retry_on class"
}

// ErrorClass is the one place that sorts stage errors into retry_on classes: timeout,
// connection, http_5xx, http_429; "" for errors retrying will not cure.
func ErrorClass(err error) string {
	var he *HTTPError
	var ne net.Error
	switch {
	case errors.As(err, &he):
		return he.Class()
	case failure.IsTimeout(err):
		return "timeout"
	case errors.As(err, &ne):
		return "connection"
	}
	return ""
}

// Close closes the inner stage when it holds resources.
func (r *retry) Close() {
	if c, ok := r.inner.(Closer); ok {
		c.Close()
	}
}

// SetClock replaces the clock (tests).
func (r *retry) SetClock(c Clock) { r.clock = c }

// Counters are the retries so far (attempts after the first), and the inner stage's.
func (r *retry) Counters() map[string]int64 {
	c := map[string]int64{}
	if in, ok := r.inner.(Counting); ok {
		c = in.Counters()
		if c == nil {
			c = map[string]int64{}
		}
	}
	c["retries"] = r.retries.Load()
	return c
}

// wait is the backoff before attempt+1 (failure.Backoff); a 429's Retry-After is honoured
// when longer.
func (r *retry) wait(attempt int, err error) time.Duration {
	d := failure.Backoff(attempt, r.initial, r.max, r.multiplier, r.jitter)
	var he *HTTPError
	if errors.As(err, &he) && he.RetryAfter > d {
		return he.RetryAfter
	}
	return d
}

func (r *retry) Start(ctx context.Context, rec *record.Record, done func([]Output, error)) {
	go func() { done(r.attempt(ctx, rec)) }() // ends with done; the engine waits for every done
}

func (r *retry) Process(ctx context.Context, rec *record.Record, out []Output) ([]Output, error) {
	outs, err := r.attempt(ctx, rec)
	return append(out, outs...), err
}

func (r *retry) attempt(ctx context.Context, rec *record.Record) ([]Output, error) {
	ctx = withTrial(ctx)
	at := readAt{rec.Topic, rec.Partition, rec.Offset}
	first := 1
	if r.spent != nil {
		if before, ok := r.spent.Get(at); ok {
			if before.failed >= r.attempts {
				return nil, &RetryError{Tries: before.failed, Exhausted: true, Err: before.err}
			}
			first = before.failed + 1 // its backoff passed while its transaction was read again
		}
	}
	for n := first; ; n++ {
		outs, err := r.inner.Process(ctx, rec, nil)
		var st failure.Stopper
		switch {
		case err == nil:
			return outs, nil
		case ctx.Err() != nil || errors.As(err, &st):
			return nil, err // the pipeline stops: no attempt is the record's
		}
		if !r.retryOn["any"] && !r.retryOn[ErrorClass(err)] {
			return nil, &RetryError{Tries: n, Err: err}
		}
		if r.spent != nil {
			r.spent.Add(at, spent{failed: n, err: err})
		}
		if n >= r.attempts {
			return nil, &RetryError{Tries: n, Exhausted: true, Err: err}
		}
		r.retries.Add(1)
		select {
		case <-r.clock.After(r.wait(n, err)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

var retryExamples = []spec.Example{
	{Title: "An HTTP enrichment retried with backoff and jitter, then dead-lettered", YAML: `
stages:
  - name: parse
    type: decode
    schema: {account_id: string, "*": any}
  - name: score
    type: retry
    attempts: 5
    backoff: {initial: 200ms, max: 5s, multiplier: 2, jitter: 0.3}
    retry_on: [timeout, connection, http_5xx, http_429]
    stage:
      type: enrich
      http: {url: '"http://risk:8080/score?account=" + urlquery(msg.account_id)', timeout: 500ms}
      into: risk
`},
}
