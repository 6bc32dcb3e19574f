package stages

import (
	"context"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

const branchDoc = "Routes each record by conditions: with mode first, to the first route whose `when` holds; with mode all, a copy to every route that holds. A route without `when` is the default, taken when no other route matches. A record no route takes is dropped."

var branchFields = []spec.Field{
	spec.List("routes", "The routes, tried in order.", spec.Object("route", "One route.",
		spec.Expr("when", "bool", "Condition for this route; leave it out for the default route."),
		spec.Strings("to", "The stage(s) or sink(s) the route sends to.").Require().NotEmpty(),
	)).Require().NotEmpty(),
	spec.Enum("mode", "first: the first matching route only; all: every matching route gets a copy (fan-out).", "first", "all").WithDefault("first"),
}

// branchType is the branch stage type as the registry knows it: the one that chooses routes.
func branchType() *Type {
	return &Type{Name: "branch", Doc: branchDoc, Fields: branchFields, Build: buildBranch, Routes: branchRoutes,
		Look: Look{DOTShape: "diamond", MermaidOpen: "{", MermaidClose: "}"}}
}

type branch struct {
	when []*expr.Program // nil entry: the default route
	all  bool
	env  *expr.Binder
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
	b := &branch{all: c.Fields.String("mode") == "all"}
	ok := true
	routes := c.Fields.Get("routes").Items
	for i, r := range routes {
		w := r.Get("when")
		if !w.Set {
			if !b.all && i < len(routes)-1 {
				c.Parser.Errorf(r.Pos, r.Path, "the default route (no when) must be the last: the routes after it are never taken")
			}
			b.when = append(b.when, nil)
			continue
		}
		p := expr.Compile(w, c.Env(), expr.WantBool, c.Diags())
		ok = ok && p != nil
		b.when = append(b.when, p)
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
	var matched []int
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
	for j, port := range matched {
		r := rec
		if j < len(matched)-1 {
			r = rec.Clone()
		}
		out = append(out, Output{Rec: r, Port: port})
	}
	return out, nil
}
