package stages

import (
	"github.com/pythia-pipe/pythia-pipe/spec"
)

const retryDoc = "Runs one inner stage (`stage`) and retries it with exponential backoff when it fails with a retryable error; after the last attempt, or at once for other errors, the record goes to the DLQ with its attempt count."

// RetryClasses are the error classes retry_on can name.
var RetryClasses = []string{"timeout", "connection", "http_5xx", "http_429", "any"}

var retryFields = []spec.Field{
	spec.Raw("stage", "The inner stage: a mapping with `type` (decode, filter, map or enrich) and that type's fields.").Require(),
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

// innerFields are the fields a retry's inner stage has besides its type's.
var innerFields = []spec.Field{
	spec.String("type", "The inner stage type.").Require(),
}

// buildRetry validates a retry stage and its inner stage. Its runtime comes with the retry
// issue; until then Built.Stage is nil and `run` refuses the pipeline with a clear message.
func buildRetry(c *Config) Built {
	sv := c.Fields.Get("stage")
	if !sv.Set {
		return Built{Out: c.In}
	}
	typ, inner := ParseStage(c.Parser, sv.Node, sv.Path, sv.Pos, innerFields, func(t string) bool {
		return t != "retry" && t != "branch"
	})
	if typ == nil {
		return Built{Out: c.In}
	}
	b := c.Fields.Get("backoff")
	if b.Duration("max") < b.Duration("initial") {
		c.Parser.Errorf(b.Get("max").Pos, b.Get("max").Path, "max (%v) is shorter than initial (%v)", b.Duration("max"), b.Duration("initial"))
	}
	built := typ.Build(&Config{Fields: inner, In: c.In, Parser: c.Parser, BaseDir: c.BaseDir})
	return Built{Out: built.Out}
}
