package stages

import (
	"context"
	"fmt"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

const mapDoc = "Reshapes records: replaces the body (`value`), sets fields (`set`), removes fields (`drop`), and may change the key and headers. Every expression sees the record as it came in."

var mapFields = []spec.Field{
	spec.Expr("value", "any", "Replaces the whole body with what this expression computes (applied before set and drop)."),
	spec.Map("set", "Fields to set on the body, each computed by an expression.", spec.Expr("field", "any", "The new value of the field.")),
	spec.Strings("drop", "Fields to remove from the body."),
	spec.Expr("key", "string", "A new record key (null: no key)."),
	spec.Map("headers", "Headers to set, each computed by an expression (a string, or null to remove the header).", spec.Expr("header", "string", "The header value.")),
}

// mapType is the map stage type as the registry knows it.
func mapType() *Type {
	return &Type{Name: "map", Doc: mapDoc, Fields: mapFields, Build: buildMap, Retryable: true, Lazy: true, Examples: mapExamples,
		Look: Look{DOTShape: "box", MermaidOpen: "[", MermaidClose: "]"}}
}

type mapStage struct {
	value   *expr.Program
	set     []namedProgram
	drop    []string
	key     *expr.Program
	headers []namedProgram
	env     *expr.Binder
}

type namedProgram struct {
	name  string
	label string // for errors: "set total", "headers x"
	prog  *expr.Program
}

func buildMap(c *Config) Built {
	f := c.Fields
	if !f.Has("value") && !f.Has("set") && !f.Has("drop") && !f.Has("key") && !f.Has("headers") {
		c.Parser.Errorf(f.Pos, f.Path, "a map stage needs at least one of value, set, drop, key or headers")
	}
	env := c.Env()
	m := &mapStage{drop: f.Strings("drop")}
	ok := true
	out := c.In
	if v := f.Get("value"); v.Set {
		m.value = expr.Compile(v, env, expr.WantAny, c.Diags())
		ok = ok && m.value != nil
		if m.value != nil {
			out = m.value.Result
		}
	}
	if f.Has("set") && out != nil && out.Kind != expr.Object && out.Kind != expr.Any {
		c.Parser.Errorf(f.Get("set").Pos, f.Get("set").Path, "set needs an object body, but the body here is %s", out)
	}
	for _, e := range f.Get("set").Entries {
		p := expr.Compile(e.Value, env, expr.WantAny, c.Diags())
		ok = ok && p != nil
		if p == nil { // known downstream all the same, so one mistake is reported once
			out = out.With(e.Key, &expr.Schema{Kind: expr.Any})
			continue
		}
		m.set = append(m.set, namedProgram{e.Key, "set " + e.Key, p})
		out = out.With(e.Key, p.Result)
	}
	by := c.where(f.Get("drop"))
	for _, d := range m.drop {
		out = out.Without(d, by)
	}
	if v := f.Get("key"); v.Set {
		m.key = expr.Compile(v, env, expr.WantAny, c.Diags())
		ok = ok && m.key != nil
	}
	for _, e := range f.Get("headers").Entries {
		p := expr.Compile(e.Value, env, expr.WantAny, c.Diags())
		ok = ok && p != nil
		m.headers = append(m.headers, namedProgram{e.Key, "headers " + e.Key, p})
	}
	if !ok {
		return Built{Out: out}
	}
	progs := []*expr.Program{m.value, m.key}
	for _, named := range [][]namedProgram{m.set, m.headers} {
		for _, np := range named {
			progs = append(progs, np.prog)
		}
	}
	m.env = expr.NewBinder(progs...)
	return Built{Stage: m, Out: out}
}

func (m *mapStage) Process(_ context.Context, rec *record.Record, out []Output) ([]Output, error) {
	vars := m.env.Bind(rec)
	defer m.env.Release(vars)
	// Every expression reads the record as it came in, and nothing changes until all have
	// run: a failure leaves the record as it was (for the DLQ, or a retry's next attempt).
	body := rec.Msg
	if m.value != nil {
		v, err := storable("value", m.value, vars)
		if err != nil {
			return out, err
		}
		body = v
	}
	var obj map[string]any
	var lazy *record.Object // a lazy body: set and drop the same, without a map
	var sets []any
	switch {
	case len(m.set) == 0 && len(m.drop) == 0:
	case body == nil && rec.Value == nil:
		// A tombstone has no fields to set or drop, and stays a tombstone (a delete) rather
		// than become a body of the fields set; `value` can give it a body on purpose.
	default:
		switch b := body.(type) {
		case map[string]any:
			obj = b
		case *record.Object:
			lazy = b
		default:
			return out, fmt.Errorf("set and drop need an object body, got %T", body)
		}
		sets = make([]any, len(m.set))
		for i, s := range m.set {
			v, err := storable(s.label, s.prog, vars)
			if err != nil {
				return out, err
			}
			sets[i] = v
		}
	}
	var key []byte
	if m.key != nil {
		k, err := m.key.Run(vars)
		if err != nil {
			return out, &FieldError{Field: "key", Err: err}
		}
		key = record.ToBytes(k)
	}
	headers := make([]any, len(m.headers))
	for i, h := range m.headers {
		v, err := h.prog.Run(vars)
		if err != nil {
			return out, &FieldError{Field: h.label, Err: err}
		}
		headers[i] = v
	}
	if obj != nil {
		if m.value == nil && holdsContainer(sets) {
			obj = shallowCopy(obj) // a value may be (or hold) the body itself: do not make it hold itself
		}
		for i, s := range m.set {
			obj[s.name] = sets[i]
		}
		for _, d := range m.drop {
			delete(obj, d)
		}
		body = obj
	}
	if lazy != nil {
		for i, s := range m.set {
			lazy.Set(s.name, sets[i])
		}
		for _, d := range m.drop {
			lazy.Delete(d)
		}
	}
	if m.key != nil {
		rec.Key = key
	}
	for i, h := range m.headers {
		setHeader(rec, h.name, headers[i])
	}
	rec.Msg, rec.Decoded = body, true
	return append(out, Output{Rec: rec}), nil
}

// holdsContainer reports a value that is an object or a list: it may share the body's maps.
// Scalars, the usual case, let the body change in place.
func holdsContainer(vs []any) bool {
	for _, v := range vs {
		switch v.(type) {
		case map[string]any, []any:
			return true
		}
	}
	return false
}

func shallowCopy(m map[string]any) map[string]any {
	c := make(map[string]any, len(m)+4)
	for k, v := range m {
		c[k] = v
	}
	return c
}

func setHeader(rec *record.Record, name string, v any) {
	kept := rec.Headers[:0:0]
	for _, h := range rec.Headers {
		if h.Key != name {
			kept = append(kept, h)
		}
	}
	if v != nil {
		kept = append(kept, record.Header{Key: name, Value: record.ToBytes(v)})
	}
	rec.Headers = kept
}

var mapExamples = []spec.Example{
	{Title: "Set, drop, re-key and add a header", YAML: `
stages:
  - name: parse
    type: decode
    schema: {order_id: string, customer_id: string, amount: float, region: string, card: "string?"}
  - name: shape
    type: map
    set:
      total_cents: round(msg.amount * 100)
      region: upper(msg.region)
    drop: [card]
    key: msg.customer_id
    headers:
      x-region: upper(msg.region)
`},
}
