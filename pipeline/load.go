package pipeline

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// Options control how a pipeline file is read.
type Options struct {
	Env     LookupEnv // default: os.LookupEnv
	BaseDir string    // folder that relative file names resolve against; default: the file's
	// Unused lists the paths of settings the caller replaces with its own (`dev` connects to
	// its in-process broker: kafka.brokers, kafka.security). A variable left unset there is not
	// an error, and since such a block cannot be checked without its values, its other problems
	// are dropped too; Pipeline.IgnoredVars names the variables.
	Unused []string
	// HTTP, when set, carries the calls of HTTP enrichments (`pythia-pipe test` answers them
	// from its mocks); default: the network.
	HTTP http.RoundTripper
	// Registry changes how the registry block's client reaches its registry (`dev` and
	// `pythia-pipe test` bring one in process).
	Registry schemareg.Options
}

// LoadFile reads and validates the pipeline file at path. The error is an I/O error; problems
// in the file come back as diagnostics (the Pipeline is nil when there are any).
func LoadFile(path string, opts Options) (*Pipeline, diag.List, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if opts.BaseDir == "" {
		opts.BaseDir = filepath.Dir(path)
	}
	p, diags := Parse(path, src, opts)
	return p, diags, nil
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Parse validates a pipeline file given as bytes; file names it in diagnostics. It returns
// the pipeline when the file has no errors (its warnings are in Pipeline.Warnings), else the
// errors and warnings.
func Parse(file string, src []byte, opts Options) (*Pipeline, diag.List) {
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	text := diag.NormalizeNewlines(string(src))
	var fileDiags diag.List // problems of the references themselves
	masked, refs, open := mask(file, text, &fileDiags)

	var parsed diag.List
	p := &spec.Parser{File: file, Lines: strings.Split(text, "\n"), Diags: &parsed}
	doc := parseYAML(p, masked)
	var missing []unresolved
	if doc != nil {
		p.Substituted, missing = substitute(doc, refs, open, opts.Env, &fileDiags)
	} else {
		reportRefs(refs, open, &fileDiags)
	}
	pl := build(p, doc, opts)

	unset := map[string]bool{}   // fields holding an unset variable: their other problems follow from it
	ignored := map[string]bool{} // unused paths holding an unset variable
	var ignoredVars []string
	for _, m := range missing {
		path := fieldOf(p.Scalars, m)
		if u := unusedPath(path, opts.Unused); u != "" && m.name != "" {
			ignored[u] = true
			ignoredVars = append(ignoredVars, m.name)
			continue
		}
		unset[path] = path != ""
		fileDiags.Add(m.pos, path, "%s", m.msg)
	}
	for _, d := range parsed {
		if !unset[d.Path] && !ignored[unusedPath(d.Path, opts.Unused)] {
			fileDiags = append(fileDiags, d)
		}
	}
	fileDiags.Sort()
	errs, warnings := fileDiags.Split()
	if len(errs) > 0 {
		return nil, fileDiags // the warnings too: they may tell why
	}
	pl.Warnings = warnings
	sort.Strings(ignoredVars)
	pl.IgnoredVars = slices.Compact(ignoredVars)
	return pl, nil
}

// fieldOf names the field whose scalar holds the reference m: the one parsed from its node,
// else (a key, a decode schema) the last scalar that starts on its line before it.
func fieldOf(scalars []spec.ScalarRef, m unresolved) string {
	best, bestCol := "", 0
	for _, s := range scalars {
		if s.Node == m.node {
			return s.Path
		}
		if s.Pos.Line == m.pos.Line && s.Pos.Col <= m.pos.Col && s.Pos.Col >= bestCol {
			best, bestCol = s.Path, s.Pos.Col
		}
	}
	return best
}

// unusedPath is the path of unused that path is, or is under; "" when none.
func unusedPath(path string, unused []string) string {
	for _, u := range unused {
		if path == u || strings.HasPrefix(path, u+".") || strings.HasPrefix(path, u+"[") {
			return u
		}
	}
	return ""
}

func build(p *spec.Parser, doc *yaml.Node, opts Options) *Pipeline {
	baseDir := opts.BaseDir
	if doc == nil {
		return nil
	}
	at := diag.Pos{File: p.File, Line: 1, Col: 1}
	if len(doc.Content) == 0 || spec.IsNull(doc.Content[0]) {
		p.Errorf(at, "", "the file is empty: a pipeline needs version, name, source, stages and sinks")
		return nil
	}
	root := spec.Resolve(doc)
	if root.Kind != yaml.MappingNode {
		p.Errorf(p.Pos(root), "", "a pipeline file is a mapping of version, name, source, stages and sinks")
		return nil
	}
	splitRunTogether(p, root)
	top := p.ParseObject(withoutExtensions(root), FileFields, "", at)
	if v := top.Get("version"); v.Set && v.IntVal != 1 {
		p.Errorf(v.Pos, v.Path, "unsupported version %d: this pythia-pipe reads version 1", v.IntVal)
	}
	pl := &Pipeline{File: p.File, Name: top.String("name"), Ordering: top.String("ordering"), Delivery: top.String("delivery"),
		MetricsAddr: top.Get("metrics").String("addr"), Progress: top.Get("metrics").Duration("progress")}
	if n := top.Get("name"); n.Set && !namePattern.MatchString(n.Str) {
		p.Errorf(n.Pos, n.Path, "invalid name %q: use letters, digits, '.', '_' and '-'", n.Str)
	}
	pl.Kafka = kafkaconn.FromValue(p, top.Get("kafka"), pl.Name, baseDir)
	pl.Registry, pl.RegistryClient = registry(p, top.Get("registry"), baseDir, opts.Registry)
	pl.Source = &Source{}
	if src := top.Get("source"); src.Set {
		fields, impl := sources.Parse(p, src.Node, src.Path, src.Pos, pl.Name)
		pl.Source = &Source{Type: fields.String("type"), Fields: fields, Impl: impl}
	}

	types := map[*Stage]*stages.Type{}
	for i, item := range top.Get("stages").Items {
		path := "stages[" + strconv.Itoa(i) + "]"
		typ, fields := stages.ParseStage(p, item.Node, path, item.Pos, stages.CommonFields, func(*stages.Type) bool { return true })
		st := &Stage{Name: fields.String("name"), Type: fields.String("type"), Pos: fields.Pos, Fields: fields,
			Workers: int(fields.Int("workers")), Ordering: fields.String("ordering")}
		if st.Ordering == "" {
			st.Ordering = pl.Ordering
		}
		types[st] = typ
		pl.Stages = append(pl.Stages, st)
	}
	sinkBase := sinks.Base{Dir: baseDir, Registry: pl.RegistryClient}
	for i, item := range top.Get("sinks").Items {
		fields, impl := sinks.Parse(p, item.Node, "sinks["+strconv.Itoa(i)+"]", item.Pos, false, sinkBase)
		pl.Sinks = append(pl.Sinks, &Sink{Name: fields.String("name"), Type: fields.String("type"), Fields: fields, Impl: impl})
	}
	if d := top.Get("dlq"); d.Set && isScalar(d.Node) {
		p.Errorf(d.Pos, d.Path, "the dlq is a sink, a mapping, not a topic name: write dlq: {type: kafka, topic: %s}", spec.Resolve(d.Node).Value)
	} else if d.Set {
		fields, impl := sinks.Parse(p, d.Node, d.Path, d.Pos, true, sinkBase)
		pl.DLQ = &Sink{Name: "dlq", Type: fields.String("type"), Fields: fields, Impl: impl}
	}
	namesOK := checkNames(p, pl)
	g := wire(p, pl, types, namesOK)
	common := stages.Config{Parser: p, BaseDir: baseDir, HTTP: opts.HTTP, Registry: pl.RegistryClient}
	if pl.Registry != nil {
		common.RegistryWait = pl.Registry.ConnectTimeout + pl.Registry.Timeout
	}
	if k := pl.KafkaSource(); k != nil {
		common.Topics = k.Topics
	}
	typeCheck(p, pl, g, types, common)
	checkDelivery(p, pl, top.Get("delivery"), top.Get("kafka"))
	pl.State = readState(top.Get("state"))
	checkState(p, pl)
	return pl
}

// registry reads the registry block and makes its client (even when the block has errors,
// so that its stages are not told there is none); nil, nil without a block.
func registry(p *spec.Parser, v *spec.Value, baseDir string, o schemareg.Options) (*schemareg.Config, *schemareg.Client) {
	c := schemareg.FromValue(p, v, baseDir)
	if c == nil {
		return nil, nil
	}
	cl, err := schemareg.New(c, o)
	if err != nil {
		p.Errorf(v.Pos, v.Path, "%v", err)
		return c, nil
	}
	return c, cl
}

func isScalar(n *yaml.Node) bool {
	n = spec.Resolve(n)
	return n != nil && n.Kind == yaml.ScalarNode && !spec.IsNull(n)
}

// withoutExtensions drops top-level keys starting with "x-": a place for YAML anchors
// shared by several blocks, as in Compose files.
func withoutExtensions(root *yaml.Node) *yaml.Node {
	c := *root
	c.Content = nil
	for i := 0; i+1 < len(root.Content); i += 2 {
		if !strings.HasPrefix(root.Content[i].Value, "x-") {
			c.Content = append(c.Content, root.Content[i], root.Content[i+1])
		}
	}
	return &c
}

// checkNames reports invalid and repeated names across stages and sinks, and says whether
// they are unique.
func checkNames(p *spec.Parser, pl *Pipeline) bool {
	seen := map[string]string{}
	unique := true
	check := func(v *spec.Value, what string) {
		name := v.Str
		switch {
		case !v.Set:
			return
		case !namePattern.MatchString(name):
			p.Errorf(v.Pos, v.Path, "invalid %s name %q: use letters, digits, '.', '_' and '-'", what, name)
		case name == "source" || name == "dlq":
			p.Errorf(v.Pos, v.Path, "%q is reserved for the pipeline's %s: choose another name", name, name)
		case seen[name] != "":
			unique = false
			p.Errorf(v.Pos, v.Path, "the name %q is already used by %s: stage and sink names are unique", name, seen[name])
		}
		if seen[name] == "" {
			seen[name] = what + " at line " + strconv.Itoa(v.Pos.Line)
		}
	}
	for _, s := range pl.Stages {
		check(s.Fields.Get("name"), "stage")
	}
	for _, s := range pl.Sinks {
		check(s.Fields.Get("name"), "sink")
	}
	return unique
}
