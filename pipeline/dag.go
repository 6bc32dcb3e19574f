package pipeline

import (
	"slices"
	"strconv"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// graph is the wiring of a pipeline: who sends to whom, and an order to visit stages in.
type graph struct {
	preds map[string][]string // by stage or sink name: the stages (or "source") sending to it
	order []*Stage            // topological when acyclic, else file order
}

// wire works out every stage's ports from `to`, routes and the implicit rules, and checks
// that the graph is sound: targets exist, no cycles, everything reached, every path ends in a
// sink. The checks of the whole graph run only when its parts are sound (namesOK, every
// target known), so that one mistake is reported once.
func wire(p *spec.Parser, pl *Pipeline, types map[*Stage]*stages.Type, namesOK bool) *graph {
	before := p.Diags.Errors()
	targets := map[string]bool{}
	var names []string
	for _, s := range pl.Stages {
		targets[s.Name] = true
		names = append(names, s.Name)
	}
	for _, s := range pl.Sinks {
		targets[s.Name] = true
		names = append(names, s.Name)
	}
	var edges []edge
	checkTargets := func(from string, v *spec.Value) []string {
		var out []string
		seen := map[string]bool{}
		for _, t := range v.Items {
			switch {
			case t.Str == "dlq" && !targets[t.Str]:
				p.Errorf(t.Pos, t.Path, "the DLQ is not a target: records reach it by failing (a stage error, a record its sink refuses); to send records there on purpose, add a sink writing to the DLQ's topic")
			case !targets[t.Str]:
				p.Errorf(t.Pos, t.Path, "unknown target %q: no stage or sink has that name%s", t.Str, diag.DidYouMean(t.Str, names))
			case seen[t.Str]:
				p.Errorf(t.Pos, t.Path, "target %q is listed twice", t.Str)
			default:
				out = append(out, t.Str)
				edges = append(edges, edge{from: from, to: t.Str, pos: t.Pos, path: t.Path})
			}
			seen[t.Str] = true
		}
		return out
	}
	sinkNames := func() string {
		var s []string
		for _, k := range pl.Sinks {
			s = append(s, k.Name)
		}
		return strings.Join(s, ", ")
	}

	for i, st := range pl.Stages {
		typ, to := types[st], st.Fields.Get("to")
		switch {
		case typ != nil && typ.Routes != nil:
			if to.Set {
				p.Errorf(to.Pos, to.Path, "a %s sends records by its routes: move this `to` into a route", st.Type)
			}
			for _, r := range typ.Routes(st.Fields) {
				st.Ports = append(st.Ports, Port{When: r.When, To: checkTargets(st.Name, r.To)})
			}
		case to.Set:
			st.Ports = []Port{{To: checkTargets(st.Name, to)}}
		case i+1 < len(pl.Stages):
			st.Ports = []Port{{To: []string{pl.Stages[i+1].Name}}}
			edges = append(edges, edge{from: st.Name, to: pl.Stages[i+1].Name, pos: st.Pos, path: "stages[" + strconv.Itoa(i) + "]"})
		case len(pl.Sinks) == 1:
			st.Ports = []Port{{To: []string{pl.Sinks[0].Name}}}
			edges = append(edges, edge{from: st.Name, to: pl.Sinks[0].Name, pos: st.Pos, path: "stages[" + strconv.Itoa(i) + "]"})
		case len(pl.Sinks) > 1:
			p.Errorf(st.Pos, "stages["+strconv.Itoa(i)+"].to", "the last stage %q needs `to`: with several sinks (%s) it cannot tell which one", st.Name, sinkNames())
		}
	}
	switch {
	case len(pl.Stages) > 0:
		pl.Entry = []string{pl.Stages[0].Name}
	case len(pl.Sinks) == 1:
		pl.Entry = []string{pl.Sinks[0].Name}
	case len(pl.Sinks) > 1:
		p.Errorf(diag.Pos{File: p.File, Line: 1, Col: 1}, "stages", "without stages, records go straight to the only sink, but there are several (%s): add a branch stage", sinkNames())
	}

	g := &graph{preds: map[string][]string{}}
	for _, e := range pl.Entry {
		g.preds[e] = append(g.preds[e], "source")
	}
	for _, st := range pl.Stages {
		for _, port := range st.Ports {
			for _, t := range port.To {
				g.preds[t] = appendOnce(g.preds[t], st.Name)
			}
		}
	}
	if !namesOK {
		return &graph{preds: g.preds, order: pl.Stages}
	}
	cyclic := findCycles(p, pl)
	if cyclic || p.Diags.Errors() > before {
		g.order = pl.Stages
		return g
	}
	reached := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if reached[n] {
			return
		}
		reached[n] = true
		if st := pl.StageByName(n); st != nil {
			for _, port := range st.Ports {
				for _, t := range port.To {
					visit(t)
				}
			}
		}
	}
	for _, e := range pl.Entry {
		visit(e)
	}
	for _, st := range pl.Stages {
		if st.Name != "" && !reached[st.Name] {
			p.Errorf(st.Pos, st.Fields.Get("name").Path, "stage %q is never reached: no stage sends records to it (check the `to` of the stages before it)", st.Name)
		}
	}
	for _, sk := range pl.Sinks {
		if sk.Name != "" && !reached[sk.Name] {
			v := sk.Fields.Get("name")
			p.Errorf(v.Pos, v.Path, "sink %q receives no records: no stage sends to it", sk.Name)
		}
	}
	g.order = topoOrder(pl)
	warnJoins(p, pl, slices.DeleteFunc(edges, func(e edge) bool { return !reached[e.from] }))
	return g
}

// edge is one way records go from a stage to a stage or sink, and where the file says so.
type edge struct {
	from, to string
	pos      diag.Pos
	path     string
}

// warnJoins warns where paths meet under ordering: key. Each path keeps the order of a key,
// but records of one key that take different paths (different routes of a branch, copies of a
// fan-out) can reach the place where they meet in another order than they were read: the
// faster path gets there first. pythia-pipe does not hold records back at joins; it says so.
func warnJoins(p *spec.Parser, pl *Pipeline, edges []edge) {
	first := map[string]edge{}
	for _, e := range edges {
		f, seen := first[e.to]
		if !seen {
			first[e.to] = e
			continue
		}
		if f.from == e.from || joinOrdering(pl, e.to) != "key" {
			continue
		}
		p.Warnf(e.pos, e.path, "%q is also reached from %q (line %d): records of one key that take different paths can arrive out of order, since ordering: key holds along each path only (set ordering: none to accept that, or join the paths earlier)",
			e.to, f.from, f.pos.Line)
	}
}

// joinOrdering is the ordering at a stage or sink where paths meet.
func joinOrdering(pl *Pipeline, name string) string {
	if st := pl.StageByName(name); st != nil {
		return st.Ordering
	}
	return pl.Ordering
}

// findCycles reports each cycle once, at the `to` that closes it, and says whether any exist.
func findCycles(p *spec.Parser, pl *Pipeline) bool {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	found := false
	var dfs func(st *Stage)
	dfs = func(st *Stage) {
		color[st.Name] = grey
		stack = append(stack, st.Name)
		for _, port := range st.Ports {
			for _, t := range port.To {
				next := pl.StageByName(t)
				if next == nil {
					continue
				}
				switch color[t] {
				case grey:
					found = true
					i := indexOf(stack, t)
					cycle := append(append([]string(nil), stack[i:]...), t)
					at := toValue(st)
					p.Errorf(at.Pos, at.Path, "records would go round in a cycle: %s", strings.Join(cycle, " -> "))
				case white:
					dfs(next)
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[st.Name] = black
	}
	for _, st := range pl.Stages {
		if color[st.Name] == white && st.Name != "" {
			dfs(st)
		}
	}
	return found
}

// toValue is where a stage says where it sends: its `to`, its routes, or the stage itself.
func toValue(st *Stage) *spec.Value {
	if v := st.Fields.Get("to"); v.Set {
		return v
	}
	if v, ok := st.Fields.Lookup("routes"); ok && v.Set { // only stages that choose routes have them
		return v
	}
	return st.Fields.Get("name")
}

// InOrder lists the stages in topological order: every stage after those that send to it.
func (pl *Pipeline) InOrder() []*Stage { return topoOrder(pl) }

func topoOrder(pl *Pipeline) []*Stage {
	var order []*Stage
	done := map[string]bool{}
	var visit func(st *Stage)
	visit = func(st *Stage) {
		if done[st.Name] {
			return
		}
		done[st.Name] = true
		for _, port := range st.Ports {
			for _, t := range port.To {
				if next := pl.StageByName(t); next != nil {
					visit(next)
				}
			}
		}
		order = append(order, st)
	}
	for _, st := range pl.Stages {
		visit(st)
	}
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	return order
}

// typeCheck builds every stage in graph order, handing each the schema its predecessors
// emit, so expressions are checked against the fields that really reach them; common holds
// what every stage gets.
func typeCheck(p *spec.Parser, pl *Pipeline, g *graph, types map[*Stage]*stages.Type, common stages.Config) {
	outOf := map[string]*expr.Schema{"source": nil}
	reads := expr.NewBodyReads()
	defer reads.Done()
	common.Reads = reads
	inOf := func(name string) *expr.Schema {
		var in *expr.Schema
		first := true
		for _, pred := range g.preds[name] {
			s, built := outOf[pred]
			switch {
			case !built: // a predecessor later in a cyclic file: judge by the others
			case first:
				first = false
				in = s
			case in == nil || s == nil:
				return nil
			case !in.Equal(s):
				if in.Kind == expr.Object && s.Kind == expr.Object {
					return expr.AnyMap()
				}
				return nil
			}
		}
		return in
	}
	rawOut := map[string]bool{"source": true} // what still emits the bytes as consumed
	rawIn := func(name string) bool {
		raw := false
		for _, pred := range g.preds[name] {
			if _, built := outOf[pred]; !built {
				continue
			}
			if !rawOut[pred] {
				return false
			}
			raw = true
		}
		return raw
	}
	for _, st := range g.order {
		st.In = inOf(st.Name)
		typ := types[st]
		if typ == nil {
			outOf[st.Name] = nil
			continue
		}
		c := common
		c.Fields, c.In, c.Raw = st.Fields, st.In, rawIn(st.Name)
		built := typ.Build(&c)
		if !typ.Lazy {
			reads.NeedsMaps()
		}
		st.Impl, st.Out = built.Stage, built.Out
		outOf[st.Name] = built.Out
		rawOut[st.Name] = c.Raw && built.Out == nil
	}
	for _, sk := range pl.Sinks {
		if sk.Impl != nil {
			sk.Impl.Compile(expr.Env{Msg: inOf(sk.Name), Reads: reads, Raw: rawIn(sk.Name)}, p.Diags)
		}
	}
}

func appendOnce(list []string, s string) []string {
	if indexOf(list, s) >= 0 {
		return list
	}
	return append(list, s)
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
