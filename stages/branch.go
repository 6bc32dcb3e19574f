package stages

import (
	"context"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

const branchDoc = "Routes each record by conditions: with mode first, to the first route whose `when` holds; with mode all, a copy to every route that holds. A route without `when` is the default, taken when no other route matches. A record no route takes is dropped, or dead-lettered (`unmatched`)."

var branchFields = []spec.Field{
	spec.List("routes", "The routes, tried in order.", spec.Object("route", "One route.",
		spec.Expr("when", "bool", "Condition for this route; leave it out for the default route."),
		spec.Strings("to", "The stage(s) or sink(s) the route sends to.").Require().NotEmpty(),
	)).Require().NotEmpty(),
	spec.Enum("mode", "first: the first matching route only; all: every matching route gets a copy (fan-out).", "first", "all").WithDefault("first"),
	spec.Enum("unmatched", "What becomes of a record no route takes, in a branch without a default route: drop it (say so, and validate stops warning), or send it to the DLQ. Unset: dropped, with a warning at validate.", "drop", "dlq"),
}

// UnmatchedError is a record no route took, in a branch with unmatched: dlq.
type UnmatchedError struct{}

func (UnmatchedError) Error() string { return "branch: no route matched (unmatched: dlq)" }

// branchType is the branch stage type as the registry knows it: the one that chooses routes.
func branchType() *Type {
	return &Type{Name: "branch", Doc: branchDoc, Fields: branchFields, Build: buildBranch, Routes: branchRoutes, Lazy: true, Examples: branchExamples,
		Look: Look{DOTShape: "diamond", MermaidOpen: "{", MermaidClose: "}"}}
}

type branch struct {
	when    []*expr.Program // nil entry: the default route
	all     bool
	deadEnd bool // unmatched: dlq
	env     *expr.Binder
}

func branchRoutes(f *spec.Value) []Route {
	items := f.Get("routes").Items
	out := make([]Route, len(items))
	for i, r := range items {
		out[i] = Route{When: r.Get("when").Written(), To: r.Get("to")} // as written: a ${VAR} may hold a secret
	}
	return out
}

func buildBranch(c *Config) Built {
	f := c.Fields
	b := &branch{all: f.String("mode") == "all", deadEnd: f.String("unmatched") == "dlq"}
	ok := true
	routes := f.Get("routes").Items
	deflt := false
	for i, r := range routes {
		w := r.Get("when")
		if !w.Set {
			if !b.all && i < len(routes)-1 {
				c.Parser.Errorf(r.Pos, r.Path, "the default route (no when) must be the last: the routes after it are never taken")
			}
			deflt = true
			b.when = append(b.when, nil)
			continue
		}
		p := expr.Compile(w, c.Env(), expr.WantBool, c.Diags())
		ok = ok && p != nil
		b.when = append(b.when, p)
	}
	switch u := f.Get("unmatched"); {
	case deflt && u.Set:
		c.Parser.Errorf(u.Pos, u.Path, "unmatched never applies: the default route (the one without when) takes what no other route does")
	case !deflt && !u.Set:
		c.Parser.Warnf(f.Get("routes").Pos, f.Get("routes").Path, "no default route: a record no route takes is dropped; add a route without when, or say unmatched: drop (or dlq, to dead-letter them)")
	}
	if b.all {
		warnSameTarget(c, routes)
	}
	if !ok {
		return Built{Out: c.In}
	}
	b.env = expr.NewBinder(b.when...)
	return Built{Stage: b, Out: c.In}
}

func (b *branch) Process(_ context.Context, rec *record.Record, out []Output) ([]Output, error) {
	vars := b.env.Bind(rec)
	defer b.env.Release(vars)
	var few [8]int // the routes taken, on the stack: a slice grown here was an allocation per record
	matched := few[:0]
	deflt := -1
	for i, w := range b.when {
		if w == nil {
			if deflt < 0 {
				deflt = i
			}
			continue
		}
		take, err := w.RunBool(vars)
		if err != nil {
			return out, err
		}
		if take {
			matched = append(matched, i)
			if !b.all {
				break
			}
		}
	}
	if len(matched) == 0 && deflt >= 0 {
		matched = append(matched, deflt)
	}
	if len(matched) == 0 && b.deadEnd {
		return out, UnmatchedError{}
	}
	for j, port := range matched {
		r := rec
		if j < len(matched)-1 {
			r = rec.Clone()
		}
		out = append(out, Output{Rec: r, Port: port})
	}
	return out, nil
}

// warnSameTarget warns where two routes of a mode: all branch send to the same place: a record
// both take arrives there twice. The default route is taken alone, so it is left out.
func warnSameTarget(c *Config, routes []*spec.Value) {
	first := map[string]int{}
	for i, r := range routes {
		if !r.Get("when").Set {
			continue
		}
		to := r.Get("to")
		for j, t := range to.Items {
			at, seen := first[t.Str]
			if !seen {
				first[t.Str] = i
				continue
			}
			if at != i {
				c.Parser.Warnf(to.Items[j].Pos, to.Items[j].Path, "routes[%d] sends to %s too: with mode: all, a record both routes take arrives there twice", at, t.Str)
			}
		}
	}
}

var branchExamples = []spec.Example{
	{Title: "First match wins; the route without when is the default", YAML: `
stages:
  - name: parse
    type: decode
    schema: {amount: float, "*": any}
  - name: route
    type: branch
    routes:
      - when: msg.amount >= 1000
        to: big
      - to: out
sinks:
  - {name: out, type: kafka, topic: orders-out}
  - {name: big, type: kafka, topic: orders-big}
`},
	{Title: "Fan-out: every route that holds gets a copy; what none takes is dropped", YAML: `
stages:
  - name: parse
    type: decode
    schema: {event: string, "*": any}
  - name: split
    type: branch
    mode: all
    unmatched: drop
    routes:
      - when: msg.event == "purchase"
        to: purchases
      - when: msg.event in ["page_view", "purchase"]
        to: pageviews
sinks:
  - {name: pageviews, type: kafka, topic: clicks-pageviews}
  - {name: purchases, type: kafka, topic: clicks-purchases}
`},
}
