// Package stages holds the stage types a pipeline is made of: one file per type, each with
// everything the rest of pythia-pipe knows of it (its Type: spec, constructor, how graphs
// draw it, the numbers it keeps, whether a retry may wrap it), listed in Types.
package stages

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// Stage is one step of a pipeline.
//
// The engine calls Process once per record, from as many goroutines as the stage has
// workers, so Process must be safe for concurrent use. It appends what the record becomes
// to out and returns the extended slice:
//   - no output: the record is filtered out — it is done and its offset may be committed;
//   - outputs: each goes to the targets of its Port (plain stages use port 0; a branch has a
//     port per route). An output may be the input record itself, changed in place.
//   - an error: the record goes to the dead-letter queue with the error, and the pipeline
//     goes on. Process may block (a lookup over HTTP); ctx ends when the pipeline stops.
type Stage interface {
	Process(ctx context.Context, rec *record.Record, out []Output) ([]Output, error)
}

// AsyncStage is a Stage that can wait without holding its worker (a retry waiting for its
// backoff), so that records of other keys go on meanwhile. Start begins processing rec and
// returns at once; done is called exactly once, from any goroutine, with what Process would
// have returned. A stage stopped by ctx reports ctx's error.
type AsyncStage interface {
	Stage
	Start(ctx context.Context, rec *record.Record, done func(out []Output, err error))
}

// Resumable is a Stage that can keep what it spent on a record (a retry's attempts) for when
// the record is read again. Exactly-once reads again every record of an aborted transaction,
// and a retry whose attempts outlast a transaction would abort every one if it started over
// each time. The engine turns it on under delivery: exactly_once, where a record's topic,
// partition and offset name it; n bounds the records remembered.
type Resumable interface {
	Stage
	KeepAttempts(n int)
}

// Bounded is a Stage that knows the longest a record can take in it (an outage it waits out
// aside): an HTTP lookup's timeout, a retry's attempts and backoffs. Exactly-once compares
// it with how long a transaction may stay open.
type Bounded interface {
	Stage
	Longest() time.Duration
}

// Closer is a Stage holding resources (idle HTTP connections); the engine closes it after
// its last record.
type Closer interface {
	Close()
}

// Counting is a Stage with numbers of its own (cache hits, retries, breaker state); the
// engine reports them beside the counters it keeps around every stage. Each key is described
// in its Type's Counters, from which the metrics are made.
type Counting interface {
	Counters() map[string]int64
}

// Output is a record a stage emits and the port it leaves by.
type Output struct {
	Rec  *record.Record
	Port int
}

// Config is what a constructor is given: the stage's parsed fields and what reaches it.
type Config struct {
	Fields  *spec.Value  // the parsed fields of the stage
	In      *expr.Schema // the schema of the bodies that reach the stage; nil before decode
	Raw     bool         // no decode comes before the stage on any path: msg is bytes
	Parser  *spec.Parser // for diagnostics on fields the stage interprets itself
	BaseDir string       // the pipeline file's folder, against which file names resolve
	Reads   *expr.BodyReads
	HTTP    http.RoundTripper // carries HTTP lookups' calls; nil: the network
	// Registry is the pipeline's schema registry (nil without a registry block); RegistryWait
	// bounds what validation waits for it; Topics are the source's topics (default subjects).
	Registry     *schemareg.Client
	RegistryWait time.Duration
	Topics       []string
}

// Env is what the stage's expressions see; compiling against it tells Reads what they read.
func (c *Config) Env() expr.Env { return expr.Env{Msg: c.In, Reads: c.Reads, Raw: c.Raw} }

// where names the stage and the line of its field v, for messages about it elsewhere:
// "stage tidy (line 37)".
func (c *Config) where(v *spec.Value) string {
	if name, ok := c.Fields.Lookup("name"); ok && name.Str != "" { // a retry's inner stage has none
		return fmt.Sprintf("stage %s (line %d)", name.Str, v.Pos.Line)
	}
	return fmt.Sprintf("line %d", v.Pos.Line)
}

// Diags is where constructors report problems.
func (c *Config) Diags() *diag.List { return c.Parser.Diags }

// Built is a constructed stage and the schema of what it emits.
type Built struct {
	Stage Stage        // nil when the configuration had errors
	Out   *expr.Schema // the body schema downstream expressions are checked against
}

// Route is an output port of a stage that chooses where records go (a branch).
type Route struct {
	When string      // the condition, shown on graph edges; "" for the default route
	To   *spec.Value // the targets (KindStrings)
}

// Type describes one stage type: all that the rest of pythia-pipe knows of it, so that a new
// type is its own file plus a line in Types.
type Type struct {
	Name   string
	Doc    string
	Fields []spec.Field
	// Build constructs the stage; it reports problems through c and never panics on input.
	Build func(c *Config) Built
	// Routes, for stages that choose their outputs, lists the ports; nil for plain stages,
	// whose single port goes to `to` (or the next stage).
	Routes func(fields *spec.Value) []Route
	// Retryable: a retry may wrap a stage of this type. A retry has one way out and runs its
	// stage again, so neither a retry nor a stage choosing routes can be wrapped.
	Retryable bool
	// Lazy: a stage of this type reads a decoded body only through its compiled expressions
	// and a map's set and drop, which take a lazy one (*record.Object). A decode stage makes
	// lazy bodies only in a pipeline all of whose stages are of such types.
	Lazy bool
	// Look is how `pythia-pipe graph` draws a stage of this type.
	Look Look
	// Counters describes the numbers a stage of this type keeps of its own (Counting), for
	// the metrics that export them; a number not described is not exported.
	Counters []spec.Counter
	// Examples are printed on the type's reference page; each validates.
	Examples []spec.Example
}

// Look is how graphs draw a stage type, as plain data: the drawing knows no type by name.
type Look struct {
	DOTShape                  string // a Graphviz node shape
	MermaidOpen, MermaidClose string // the brackets of a Mermaid node: [/ and /] for a parallelogram
	// Detail, when set, sums up a stage's fields on its label: suffix follows the type on the
	// first line (" json", " ×3: enrich"); line is a second line, which the drawing shortens
	// (a filter's condition). When both are empty the label shows the workers instead.
	Detail func(fields *spec.Value) (suffix, line string)
}

// Types lists every stage type, in the order the docs name them.
func Types() []*Type {
	retry := retryType()
	types := []*Type{decodeType(), filterType(), mapType(), enrichType(), retry, branchType(), dedupeType(), aggregateType()}
	retry.Fields = retryFields(types) // its `stage` field names the types a retry may wrap
	return types
}

// Registry lists every stage type by name.
func Registry() map[string]*Type {
	reg := map[string]*Type{}
	for _, t := range Types() {
		reg[t.Name] = t
	}
	return reg
}

// typeList names the types that keep, in the order of Types: "decode, filter or map".
func typeList(types []*Type, keep func(*Type) bool) string {
	var names []string
	for _, t := range types {
		if keep(t) {
			names = append(names, t.Name)
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// CommonFields are the fields every stage has, besides those of its type.
var CommonFields = []spec.Field{
	spec.String("name", "Unique name of the stage; used by `to`, in metrics and in DLQ headers.").Require(),
	spec.String("type", "The stage type: "+typeList(Types(), func(*Type) bool { return true })+".").Require(),
	spec.Strings("to", "Where records go next: a stage or sink name, or a list to send a copy to each. Default: the next stage, or the only sink after the last stage."),
	spec.Int("workers", "Goroutines processing this stage's records.").WithDefault("1").AtLeast(1).AtMost(1024),
	spec.Enum("ordering", "key: records with the same key keep their order; none: any order, for speed. Default: the pipeline's ordering.", "key", "none"),
}
