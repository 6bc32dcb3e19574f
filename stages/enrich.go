package stages

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

const enrichDoc = "Adds data from a lookup — a file table, a table topic (compacted: its latest value per key), an HTTP service or an expression — into a field (`into`) or merged into the body (`merge`)."

var enrichFields = []spec.Field{
	spec.Expr("key", "any", "The lookup key: a file table's key column; an HTTP lookup's cache key (default: the method, URL and body, so that answers differ when requests do)."),
	spec.Object("file", "Look up rows of a table file, loaded at start.",
		spec.String("path", "The file, relative to the pipeline file.").Require(),
		spec.Enum("format", "csv, json (a list of objects), jsonl or yaml. Default: from the file name's extension.", "csv", "json", "jsonl", "yaml"),
		spec.String("key_column", "The column (field) that `key` is matched against; keys must be unique.").Require(),
		spec.Duration("reload", "Check the file this often and reload it when it changed; 0 never reloads.").WithDefault("0s"),
	),
	spec.Object("http", "Look up over HTTP; the response body is decoded as JSON.",
		spec.Expr("url", "string", "The URL to call, computed per record. Escape record data with urlquery() in a query and urlpath() in a path.").Require(),
		spec.Enum("method", "The HTTP method.", "GET", "POST", "PUT").WithDefault("GET"),
		spec.Map("headers", "Request headers.", spec.String("header", "The header value.")),
		spec.Expr("body", "any", "Request body, sent as JSON."),
		spec.Strings("redact", "Names of query parameters, and of JSON fields in the excerpt of an answer, whose values errors hide (case-insensitive), besides user info, header values and names containing token, key, secret, passw, auth, signature, credential or session, or the words sig, pass or pwd."),
		spec.Duration("timeout", "Time allowed for one call.").WithDefault("2s"),
		spec.Int("concurrency", "Calls in flight at once, across the stage's workers.").WithDefault("16").AtLeast(1).AtMost(4096),
		spec.Object("cache", "An LRU cache of answers, by key.",
			spec.Int("size", "Entries kept; 0 disables the cache.").WithDefault("10000").AtLeast(0),
			spec.Size("max_bytes", "Bytes the cached answers may take in all (as received); the least recently used go first, and a larger answer is not cached.").WithDefault("64MiB").AtLeast(1024),
			spec.Duration("ttl", "How long an answer is kept.").WithDefault("5m"),
			spec.Duration("negative_ttl", "How long a missing answer (404) is kept.").WithDefault("30s"),
		),
		spec.Object("breaker", "Outage detection: after `failures` consecutive failures of the service (timeouts, connection errors, 5xx, 429; not 4xx), the service is down for everyone and records wait, using up no attempt, while one probe call at a time backs off from 500ms to `cooldown`; the first answer ends the outage.",
			spec.Int("failures", "Consecutive service failures that open the breaker; 0 disables it, and then every failure counts against its record.").WithDefault("5").AtLeast(0),
			spec.Duration("cooldown", "The longest wait between probes while the breaker is open.").WithDefault("10s"),
			spec.Duration("max_outage", "Stop the pipeline (without committing, so nothing is lost) when an outage lasts this long; 0 waits for as long as it lasts. Records are never dead-lettered for an outage.").WithDefault("0s"),
		),
	),
	tableField,
	spec.Expr("expr", "any", "Computes the enrichment from the record; null counts as missing."),
	spec.String("into", "The field the enrichment is stored in."),
	spec.Bool("merge", "Merge the enrichment's fields into the body instead of storing it in one field.").WithDefault("false"),
	spec.Enum("on_missing", "When the lookup finds nothing: keep the record unchanged, drop it, send it to the DLQ (its reason names the key), set the `into` field to null (null), or, for a table lookup, wait for the key to appear in the table, up to `table.max_wait`, then send the record to the DLQ (wait: the record holds its worker meanwhile, and a stop waits for it as long as the drain allows; a record cut short by the stop is read again).", "keep", "drop", "dlq", "null", "wait").WithDefault("keep"),
}

// enrichType is the enrich stage type as the registry knows it; its numbers are its HTTP
// lookup's.
func enrichType() *Type {
	return &Type{Name: "enrich", Doc: enrichDoc, Fields: enrichFields, Build: buildEnrich, Retryable: true, Examples: enrichExamples, Counters: append(slices.Clone(httpLookupCounters), tableCounters...),
		Look: Look{DOTShape: "component", MermaidOpen: "[", MermaidClose: "]", Detail: func(f *spec.Value) (string, string) {
			if f.Has("table") {
				return " (table " + f.Get("table").String("topic") + ")", ""
			}
			for _, src := range []string{"file", "http", "expr"} {
				if f.Has(src) {
					return " (" + src + ")", ""
				}
			}
			return "", ""
		}}}
}

// enrich looks up a file table or an HTTP service, or computes an expression, per record.
type enrich struct {
	key       *expr.Program
	table     *table
	tbl       *tableLookup // a table topic
	http      *httpLookup
	compute   *expr.Program
	into      string
	label     string // for errors in expr: "into risk" or "merge"
	merge     bool
	onMissing string
	env       *expr.Binder
}

// Longest is the longest one record takes: an HTTP lookup's timeout (a breaker's outage
// aside), nothing to speak of otherwise.
func (e *enrich) Longest() time.Duration {
	if e.tbl != nil && e.onMissing == "wait" {
		return e.tbl.maxWait
	}
	if e.http == nil {
		return 0
	}
	return e.http.client.Timeout
}

// MissingError is a record whose lookup found nothing, with on_missing: dlq (or wait, and
// the key did not appear in time). Key is the lookup's key; "" for an HTTP lookup without one
// and for an expression.
type MissingError struct {
	Key     string
	Table   string        // a table lookup's topic
	NullKey bool          // a table lookup's key was null
	Waited  time.Duration // on_missing: wait: how long the record waited for its key
	Static  bool          // on_missing: wait, with a table that never changes (pythia-pipe test)
}

func (e *MissingError) Error() string {
	switch {
	case e.Table != "" && e.NullKey:
		return fmt.Sprintf("enrich: the key looked up in table %s is null", e.Table)
	case e.Table != "" && e.Waited > 0:
		return fmt.Sprintf("enrich: key %q did not appear in table %s within max_wait %v (on_missing: wait)", e.Key, e.Table, e.Waited)
	case e.Table != "" && e.Static:
		return fmt.Sprintf("enrich: no key %q in table %s (on_missing: wait, but this run's table never changes)", e.Key, e.Table)
	case e.Table != "":
		return fmt.Sprintf("enrich: no key %q in table %s (on_missing: dlq)", e.Key, e.Table)
	}
	if e.Key == "" {
		return "enrich: the lookup found nothing (on_missing: dlq)"
	}
	return fmt.Sprintf("enrich: nothing found for key %q (on_missing: dlq)", e.Key)
}

// buildEnrich validates an enrich stage and, for file and expression lookups, builds it.
func buildEnrich(c *Config) Built {
	f := c.Fields
	env := c.Env()
	var sources []string
	for _, s := range []string{"file", "table", "http", "expr"} {
		if f.Has(s) {
			sources = append(sources, s)
		}
	}
	switch len(sources) {
	case 0:
		c.Parser.Errorf(f.Pos, f.Path, "an enrich stage needs one lookup: file, table, http or expr")
	case 1:
	default:
		c.Parser.Errorf(f.Get(sources[1]).Pos, f.Get(sources[1]).Path, "an enrich stage has one lookup, but this one also has %s", sources[0])
	}
	before := c.Diags().Errors()
	e := &enrich{into: f.String("into"), label: "into " + f.String("into"), merge: f.Bool("merge"), onMissing: onMissingOf(f)}
	if e.merge {
		e.label = "merge"
	}
	switch {
	case f.Has("table"):
		tv := f.Get("table")
		if k := f.Get("key"); k.Set {
			c.Parser.Errorf(k.Pos, k.Path, "a table lookup's key goes in the table block: table.key")
		}
		e.tbl = newTableLookup(c, tv)
		if kv := tv.Get("key"); kv.Set {
			if e.key = expr.Compile(kv, env, expr.WantAny, c.Diags()); e.key != nil && !keyable(e.key.Result) {
				c.Parser.Errorf(kv.Pos, kv.Path, "a table key cannot be a %s: compute a string or a number from it", e.key.Result)
			}
		}
	case f.Has("key"):
		e.key = expr.Compile(f.Get("key"), env, expr.WantAny, c.Diags())
	case f.Has("file"):
		c.Parser.Errorf(f.Get("file").Pos, f.Path+".key", "a file lookup needs a key expression (the value matched against key_column)")
	}
	if file := f.Get("file"); file.Set {
		e.table = checkTableFile(c, file)
	}
	if h := f.Get("http"); h.Set {
		e.http = newHTTPLookup(c, h, env)
	}
	if f.Has("expr") {
		e.compute = expr.Compile(f.Get("expr"), env, expr.WantAny, c.Diags())
	}
	if om := f.Get("on_missing"); e.onMissing == "wait" && e.tbl == nil {
		c.Parser.Errorf(om.Pos, om.Path, "on_missing: wait waits for a key to appear in a table topic: only a table lookup can")
	} else if e.onMissing == "null" && f.Bool("merge") {
		c.Parser.Errorf(om.Pos, om.Path, "on_missing: null sets the into field to null: with merge, there is none (use keep)")
	}
	if mw := f.Get("table").Get("max_wait"); mw.Set && e.onMissing != "wait" {
		c.Parser.Warnf(mw.Pos, mw.Path, "max_wait applies to on_missing: wait, and this stage's on_missing is %s", e.onMissing)
	}
	out := c.In
	switch into, merge := f.Get("into"), f.Bool("merge"); {
	case into.Set && merge:
		c.Parser.Errorf(into.Pos, into.Path, "into and merge: true exclude each other: store the enrichment in one field, or merge its fields")
	case into.Set:
		found := *e.found() // unless on_missing keeps the records it found nothing for, it is there
		found.Optional = e.onMissing == "keep" || e.onMissing == "null"
		out = out.With(into.Str, &found)
	case merge:
		out = e.merged(c, out)
	default:
		c.Parser.Errorf(f.Pos, f.Path, "an enrich stage needs into (a field name) or merge: true")
	}
	if c.Diags().Errors() > before {
		return Built{Out: out}
	}
	progs := []*expr.Program{e.key, e.compute}
	if e.http != nil {
		progs = append(progs, e.http.url, e.http.body)
		warnKeyGaps(c, e.key, e.http)
	}
	e.env = expr.NewBinder(progs...)
	return Built{Stage: e, Out: out}
}

// found is the schema of what the lookup finds: a table's row, what the expression computes,
// or (an HTTP answer) anything.
func (e *enrich) found() *expr.Schema {
	switch {
	case e.table != nil:
		return e.table.schema()
	case e.tbl != nil:
		return e.tbl.found()
	case e.compute != nil:
		return e.compute.Result
	}
	return &expr.Schema{Kind: expr.Any}
}

// merged is the schema of a body with the lookup's fields merged in. Fields of an unknown
// answer may be anything; known ones (a table's columns) replace those of the body, or, where
// on_missing keeps records that found nothing, join them. A column that changes a declared
// field's type is worth a warning: the stages after it see the new type.
func (e *enrich) merged(c *Config, body *expr.Schema) *expr.Schema {
	fields := e.found()
	if fields.Kind != expr.Object || fields.Unchecked {
		return body.Opened()
	}
	mayMiss := e.onMissing == "keep"
	merge := c.Fields.Get("merge")
	for _, name := range fields.FieldNames() {
		col := fields.Fields[name]
		prev, had := body.Field(name)
		if had && prev.Kind != col.Kind && prev.Kind != expr.Any && col.Kind != expr.Any {
			hint := ""
			if e.table != nil && e.table.format == "csv" {
				hint = " (CSV columns are text: convert where it is read, as with int(msg." + name + "), or use a JSON or YAML table)"
			}
			c.Parser.Warnf(merge.Pos, merge.Path, "the lookup's %s holds a %s, which replaces the field msg.%s (%s): the stages after this one see a %s%s",
				name, col.Kind, name, prev, col.Kind, hint)
		}
		next := col
		switch {
		case mayMiss && had && !prev.Equal(col):
			next = &expr.Schema{Kind: expr.Any, Optional: prev.Optional || col.Optional}
		case mayMiss && had:
			next = prev
		case mayMiss:
			optional := *col
			optional.Optional = true
			next = &optional
		}
		body = body.With(name, next)
	}
	return body
}

// Counters are the HTTP lookup's cache and breaker numbers.
func (e *enrich) Counters() map[string]int64 {
	if e.tbl != nil {
		return e.tbl.counters()
	}
	if e.http == nil {
		return nil
	}
	return e.http.counters()
}

// Close lets go of the HTTP lookup's idle connections, and stops following a table topic.
func (e *enrich) Close() {
	if e.tbl != nil {
		e.tbl.close()
	}
	if e.http != nil {
		e.http.client.CloseIdleConnections()
	}
}

func (e *enrich) Process(ctx context.Context, rec *record.Record, out []Output) ([]Output, error) {
	if rec.Tombstone() {
		// A delete has no body to add to, and nothing worth a lookup: it goes on as it is.
		return append(out, Output{Rec: rec}), nil
	}
	vars := e.env.Bind(rec)
	defer e.env.Release(vars)
	var found any
	var key string
	switch {
	case e.tbl != nil:
		k, err := e.key.Run(vars)
		if err != nil {
			return out, err
		}
		kb := record.ToBytes(k)
		v, ok, err := e.tbl.lookup(ctx, kb, e.onMissing == "wait")
		if err != nil {
			return out, err
		}
		if ok {
			found = record.DeepCopy(v)
		} else if found = nil; e.onMissing == "dlq" || e.onMissing == "wait" {
			return out, e.tbl.missing(kb, e.onMissing == "wait")
		}
	case e.table != nil:
		k, err := e.key.Run(vars)
		if err != nil {
			return out, err
		}
		key = fmt.Sprint(k)
		if row, ok := e.table.lookup(key); ok {
			found = record.DeepCopy(row)
		}
	case e.http != nil:
		var k any
		if e.key != nil {
			var err error
			if k, err = e.key.Run(vars); err != nil {
				return out, err
			}
			key = fmt.Sprint(k)
		}
		v, err := e.http.lookup(ctx, vars, k)
		if err != nil {
			return out, err
		}
		found = record.DeepCopy(v)
	default:
		v, err := storable(e.label, e.compute, vars)
		if err != nil {
			return out, err
		}
		found = v
	}
	if found == nil {
		switch e.onMissing {
		case "drop":
			return out, nil
		case "dlq", "wait":
			return out, &MissingError{Key: key}
		case "null":
			body, ok := record.Plain(rec.Msg).(map[string]any) // not a Lazy type: never lazy, but safe
			if !ok {
				return out, fmt.Errorf("enrich needs an object body, got %T", rec.Msg)
			}
			body = shallowCopy(body)
			body[e.into] = nil
			rec.Msg, rec.Decoded = body, true
		}
		return append(out, Output{Rec: rec}), nil
	}
	body, ok := record.Plain(rec.Msg).(map[string]any) // not a Lazy type: never lazy, but safe
	if !ok {
		return out, fmt.Errorf("enrich needs an object body, got %T", rec.Msg)
	}
	body = shallowCopy(body)
	if e.merge {
		fields, ok := found.(map[string]any)
		if !ok {
			return out, fmt.Errorf("enrich merge: the lookup gave %T, not an object", found)
		}
		for k, v := range fields {
			body[k] = v
		}
	} else {
		body[e.into] = found
	}
	rec.Msg, rec.Decoded = body, true
	return append(out, Output{Rec: rec}), nil
}

// warnKeyGaps warns when an HTTP lookup's cache key leaves out something its request reads:
// records that differ only there would share one cached answer.
func warnKeyGaps(c *Config, key *expr.Program, h *httpLookup) {
	if key == nil || h.cache == nil {
		return
	}
	var gaps []string
	for _, p := range []*expr.Program{h.url, h.body} {
		if p == nil {
			continue
		}
		for _, r := range p.Reads() {
			covered := slices.ContainsFunc(key.Reads(), func(k string) bool { return expr.Covers(k, r) })
			if !covered && !slices.Contains(gaps, r) {
				gaps = append(gaps, r)
			}
		}
	}
	if len(gaps) > 0 {
		k := c.Fields.Get("key")
		c.Parser.Warnf(k.Pos, k.Path, "the request reads %s, which the cache key leaves out: records that differ only there share one cached answer (add it to key, or leave key out to cache by the whole request)",
			strings.Join(gaps, ", "))
	}
}

// checkTableFile loads the lookup file at validate time, so that a bad file, a missing key
// column or a duplicate key is a diagnostic (naming the line in the file).
func checkTableFile(c *Config, file *spec.Value) *table {
	path := file.Get("path")
	if !path.Set {
		return nil
	}
	format := formatOf(path.Str, file.String("format"))
	switch format {
	case "csv", "json", "jsonl", "yaml":
	default:
		c.Parser.Errorf(path.Pos, path.Path, "cannot tell the table format from %q: set format to csv, json, jsonl or yaml", filepath.Base(path.Str))
		return nil
	}
	before := c.Diags().Errors()
	c.Parser.CheckFile(path, c.BaseDir)
	if c.Diags().Errors() > before {
		return nil
	}
	name := path.Str
	if !filepath.IsAbs(name) {
		name = filepath.Join(c.BaseDir, name)
	}
	t, err := loadTable(name, format, file.String("key_column"), file.Duration("reload"))
	if err != nil {
		at := path
		var te *TableError
		if errors.As(err, &te) && te.MissingColumn {
			at = file.Get("key_column")
		}
		c.Parser.Errorf(at.Pos, at.Path, "%v", err)
		return nil
	}
	return t
}

var enrichExamples = []spec.Example{
	{Title: "From a CSV table, reloaded when it changes", YAML: `
stages:
  - name: parse
    type: decode
    schema: {country: "string?", "*": any}
  - name: geo
    type: enrich
    key: msg.country ?? "unknown"
    file: {path: data/countries.csv, key_column: code, reload: 1m}
    into: geo
    on_missing: keep
`},
	{Title: "From a compacted topic of customers, kept as a local table", YAML: `
stages:
  - name: parse
    type: decode
    schema: {id: int, customer_id: string, amount: float}
  - name: customer
    type: enrich
    table:
      topic: customers
      key: msg.customer_id
      schema: {name: string, tier: string, "country?": string}
      max_wait: 10s
    into: customer
    on_missing: wait
  - name: tag
    type: map
    set: {gold: msg.customer.tier == "gold"}
`},
	{Title: "Over HTTP, cached, with outages waited out", YAML: `
stages:
  - name: parse
    type: decode
    schema: {account_id: string, "*": any}
  - name: risk
    type: enrich
    workers: 32
    key: msg.account_id
    http:
      url: '"http://risk:8080/score?account=" + urlquery(msg.account_id)'
      timeout: 500ms
      concurrency: 64
      cache: {size: 50000, max_bytes: 64MiB, ttl: 1m, negative_ttl: 10s}
      breaker: {failures: 10, cooldown: 30s, max_outage: 1h}
    into: risk
`},
	{Title: "By an expression; null counts as missing", YAML: `
stages:
  - name: parse
    type: decode
    schema: {amount: float, "*": any}
  - name: tier
    type: enrich
    expr: 'msg.amount > 1000 ? {"tier": "gold"} : nil'
    merge: true
`},
}

// onMissingOf reads on_missing, where `on_missing: null` written unquoted is YAML's null: the
// value null, not a field left out.
func onMissingOf(f *spec.Value) string {
	if f.Node != nil {
		for _, kv := range spec.MappingPairs(f.Node) {
			if v := spec.Resolve(kv[1]); kv[0].Value == "on_missing" && v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Value != "" {
				return "null"
			}
		}
	}
	return f.String("on_missing")
}
