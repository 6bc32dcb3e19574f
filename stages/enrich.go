package stages

import (
	"path/filepath"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

const enrichDoc = "Adds data from a lookup — a file table, an HTTP service or an expression — into a field (`into`) or merged into the body (`merge`)."

var enrichFields = []spec.Field{
	spec.Expr("key", "any", "The lookup key (a file table's key column; an HTTP lookup's cache key, default the URL)."),
	spec.Object("file", "Look up rows of a table file, loaded at start.",
		spec.String("path", "The file, relative to the pipeline file.").Require(),
		spec.Enum("format", "csv, json (a list of objects), jsonl or yaml. Default: from the file name's extension.", "csv", "json", "jsonl", "yaml"),
		spec.String("key_column", "The column (field) that `key` is matched against; keys must be unique.").Require(),
		spec.Duration("reload", "Check the file this often and reload it when it changed; 0 never reloads.").WithDefault("0s"),
	),
	spec.Object("http", "Look up over HTTP; the response body is decoded as JSON.",
		spec.Expr("url", "string", "The URL to call, computed per record.").Require(),
		spec.Enum("method", "The HTTP method.", "GET", "POST", "PUT").WithDefault("GET"),
		spec.Map("headers", "Request headers.", spec.String("header", "The header value.")),
		spec.Expr("body", "any", "Request body, sent as JSON."),
		spec.Duration("timeout", "Time allowed for one call.").WithDefault("2s"),
		spec.Int("concurrency", "Calls in flight at once, across the stage's workers.").WithDefault("16").AtLeast(1).AtMost(4096),
		spec.Object("cache", "An LRU cache of answers, by key.",
			spec.Int("size", "Entries kept; 0 disables the cache.").WithDefault("10000").AtLeast(0),
			spec.Duration("ttl", "How long an answer is kept.").WithDefault("5m"),
			spec.Duration("negative_ttl", "How long a missing answer (404) is kept.").WithDefault("30s"),
		),
		spec.Object("breaker", "A circuit breaker: after `failures` consecutive failures, calls fail fast for `cooldown`, then one probe is let through.",
			spec.Int("failures", "Consecutive failures that open the breaker; 0 disables it.").WithDefault("5").AtLeast(0),
			spec.Duration("cooldown", "How long the breaker stays open before a probe.").WithDefault("10s"),
		),
	),
	spec.Expr("expr", "any", "Computes the enrichment from the record; null counts as missing."),
	spec.String("into", "The field the enrichment is stored in."),
	spec.Bool("merge", "Merge the enrichment's fields into the body instead of storing it in one field.").WithDefault("false"),
	spec.Enum("on_missing", "When the lookup finds nothing: keep the record unchanged, drop it, or send it to the DLQ.", "keep", "drop", "dlq").WithDefault("keep"),
}

// buildEnrich validates an enrich stage. Its runtime comes with the enrich issue; until then
// Built.Stage is nil and `run` refuses the pipeline with a clear message.
func buildEnrich(c *Config) Built {
	f := c.Fields
	env := expr.Env{Msg: c.In}
	var sources []string
	for _, s := range []string{"file", "http", "expr"} {
		if f.Has(s) {
			sources = append(sources, s)
		}
	}
	switch len(sources) {
	case 0:
		c.Parser.Errorf(f.Pos, f.Path, "an enrich stage needs one lookup: file, http or expr")
	case 1:
	default:
		c.Parser.Errorf(f.Get(sources[1]).Pos, f.Get(sources[1]).Path, "an enrich stage has one lookup, but this one also has %s", sources[0])
	}
	if f.Has("key") {
		expr.Compile(f.Get("key"), env, expr.WantAny, c.Diags())
	} else if f.Has("file") {
		c.Parser.Errorf(f.Get("file").Pos, f.Path+".key", "a file lookup needs a key expression (the value matched against key_column)")
	}
	if file := f.Get("file"); file.Set {
		checkTableFile(c, file)
	}
	if h := f.Get("http"); h.Set {
		expr.Compile(h.Get("url"), env, expr.WantString, c.Diags())
		if h.Has("body") {
			expr.Compile(h.Get("body"), env, expr.WantAny, c.Diags())
		}
	}
	if f.Has("expr") {
		expr.Compile(f.Get("expr"), env, expr.WantAny, c.Diags())
	}
	out := c.In
	switch into, merge := f.Get("into"), f.Bool("merge"); {
	case into.Set && merge:
		c.Parser.Errorf(into.Pos, into.Path, "into and merge: true exclude each other: store the enrichment in one field, or merge its fields")
	case into.Set:
		out = out.With(into.Str, &expr.Schema{Kind: expr.Any, Optional: true})
	case merge:
		out = out.Opened()
	default:
		c.Parser.Errorf(f.Pos, f.Path, "an enrich stage needs into (a field name) or merge: true")
	}
	return Built{Out: out}
}

func checkTableFile(c *Config, file *spec.Value) {
	path := file.Get("path")
	if !path.Set {
		return
	}
	if !file.Has("format") {
		ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(path.Str)), ".")
		if ext == "yml" {
			ext = "yaml"
		}
		switch ext {
		case "csv", "json", "jsonl", "yaml":
		default:
			c.Parser.Errorf(path.Pos, path.Path, "cannot tell the table format from %q: set format to csv, json, jsonl or yaml", filepath.Base(path.Str))
		}
	}
	c.Parser.CheckFile(path, c.BaseDir)
}
