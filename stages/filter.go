package stages

import (
	"context"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

const filterDoc = "Keeps the records for which `when` is true; the others are dropped (and committed)."

var filterFields = []spec.Field{
	spec.Expr("when", "bool", "Condition; records for which it is true go on, null or false are dropped.").Require(),
}

// filterType is the filter stage type as the registry knows it. Its label shows the condition
// as written: a ${VAR} in it may hold a secret.
func filterType() *Type {
	return &Type{Name: "filter", Doc: filterDoc, Fields: filterFields, Build: buildFilter, Retryable: true, Lazy: true, Examples: filterExamples,
		Look: Look{DOTShape: "invtrapezium", MermaidOpen: `[\`, MermaidClose: "/]", Detail: func(f *spec.Value) (string, string) {
			return "", f.Get("when").Written()
		}}}
}

type filter struct {
	when *expr.Program
	env  *expr.Binder
}

func buildFilter(c *Config) Built {
	p := expr.Compile(c.Fields.Get("when"), c.Env(), expr.WantBool, c.Diags())
	if p == nil {
		return Built{Out: c.In}
	}
	return Built{Stage: &filter{when: p, env: expr.NewBinder(p)}, Out: p.Narrow(c.In)}
}

func (f *filter) Process(_ context.Context, rec *record.Record, out []Output) ([]Output, error) {
	vars := f.env.Bind(rec)
	defer f.env.Release(vars)
	keep, err := f.when.RunBool(vars)
	if err != nil || !keep {
		return out, err
	}
	return append(out, Output{Rec: rec}), nil
}

var filterExamples = []spec.Example{
	{Title: "Keep orders with a positive amount; tombstones go on", YAML: `
stages:
  - name: parse
    type: decode
    schema: {order_id: string, amount: float}
  - name: valid
    type: filter
    when: msg == nil || msg.amount > 0
`},
}
