package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

// Parser turns YAML nodes into Values against Field specs, collecting every problem in Diags.
type Parser struct {
	File  string
	Lines []string // the file's lines as written, for the indentation of block scalars
	Diags *diag.List

	// Scalars records every scalar value parsed, so that a problem known only by its node or
	// position (an unset ${VAR}) can be attributed to its field.
	Scalars []ScalarRef

	// Substituted holds the scalars that ${VAR} substitution changed, with their text as written
	// (Value.Written, Value.ExprPos).
	Substituted map[*yaml.Node]*Substitution

	parsingDefault bool // a default is being parsed: a bad one must not fall back to itself
}

// ScalarRef is a scalar value: its node, where it was written and which field it belongs to.
type ScalarRef struct {
	Node *yaml.Node
	Pos  diag.Pos
	Path string
}

// Pos is the position of node in the file.
func (p *Parser) Pos(n *yaml.Node) diag.Pos {
	return diag.Pos{File: p.File, Line: n.Line, Col: n.Column}
}

// Errorf records a problem at node (which may be nil: then at pos of the fallback value).
func (p *Parser) Errorf(at diag.Pos, path, format string, args ...any) {
	p.Diags.Add(at, path, format, args...)
}

// Warnf reports a warning: the file is valid, but likely not what its author meant.
func (p *Parser) Warnf(at diag.Pos, path, format string, args ...any) {
	p.Diags.Warn(at, path, format, args...)
}

// Resolve follows an alias to the node it names.
func Resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return Resolve(n.Content[0])
	}
	return n
}

// IsNull reports whether n is absent or an explicit null (`key:` or `key: null`).
func IsNull(n *yaml.Node) bool {
	n = Resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// MappingPairs returns the key/value pairs of a mapping node with YAML merge keys (<<)
// expanded; keys written in the mapping itself win over merged ones.
func MappingPairs(n *yaml.Node) [][2]*yaml.Node {
	n = Resolve(n)
	var own, merged [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			for _, m := range mergeSources(v) {
				merged = append(merged, MappingPairs(m)...)
			}
			continue
		}
		seen[k.Value] = true
		own = append(own, [2]*yaml.Node{k, v})
	}
	for _, kv := range merged {
		if !seen[kv[0].Value] {
			seen[kv[0].Value] = true
			own = append(own, kv)
		}
	}
	return own
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	v = Resolve(v)
	switch v.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range v.Content {
			if c = Resolve(c); c.Kind == yaml.MappingNode {
				out = append(out, c)
			}
		}
		return out
	}
	return nil
}

// ParseObject parses a mapping node against fields. Unknown keys, duplicates and missing
// required keys are reported; absent keys with a default get it.
func (p *Parser) ParseObject(n *yaml.Node, fields []Field, path string, at diag.Pos) *Value {
	n = Resolve(n)
	if IsNull(n) {
		n = nil
	}
	obj := &Value{Node: n, Pos: at, Path: path, Set: n != nil, Fields: map[string]*Value{}, spec: objectSpec(fields)}
	suggested := map[string]bool{} // fields offered for a misspelt key: not also "missing"
	if n != nil && n.Kind != yaml.MappingNode {
		p.Errorf(p.Pos(n), path, "expected a mapping of %s, got %s", fieldList(fields), describe(n))
		n = nil // go on with the defaults, so that checks between fields see sane values
	}
	if n != nil {
		obj.Pos = p.Pos(n)
		for _, kv := range MappingPairs(n) {
			k, v := kv[0], kv[1]
			f, ok := Lookup(fields, k.Value)
			kpath := join(path, k.Value)
			if !ok {
				s := diag.Suggest(k.Value, Names(fields))
				suggested[s] = true
				p.Errorf(p.Pos(k), kpath, "unknown field %q%s", k.Value, diag.SuggestionText(s))
				continue
			}
			if _, dup := obj.Fields[k.Value]; dup {
				p.Errorf(p.Pos(k), kpath, "duplicate field %q", k.Value)
				continue
			}
			obj.Fields[k.Value] = p.Parse(v, &f, kpath, p.Pos(k))
		}
	}
	for i := range fields {
		f := &fields[i]
		if _, ok := obj.Fields[f.Name]; ok {
			continue
		}
		switch {
		case f.Required && n == nil: // an absent object reads as its defaults; its required fields matter once it is written
		case f.Required && suggested[f.Name]: // already reported as a misspelt key
		case f.Required:
			p.Errorf(obj.Pos, join(path, f.Name), "missing required field %q (%s)", f.Name, f.Doc)
		case f.Default != "":
			obj.Fields[f.Name] = p.defaultValue(f, join(path, f.Name), obj.Pos)
		case f.Kind == KindObject:
			// Absent objects read as their defaults, so nested defaults always apply.
			d := p.ParseObject(nil, f.Fields, join(path, f.Name), obj.Pos)
			d.Field, d.Set = f, false
			obj.Fields[f.Name] = d
		}
	}
	return obj
}

// CheckDefaults parses the default of every field under fields against its own spec, so that
// a spec with a default it would itself refuse fails a test rather than a user.
func CheckDefaults(fields []Field) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	p := &Parser{File: "defaults", Diags: &diag.List{}}
	var walk func(fields []Field)
	walk = func(fields []Field) {
		for i := range fields {
			f := &fields[i]
			if f.Default != "" {
				p.defaultValue(f, f.Name, diag.Pos{})
			}
			walk(f.Fields)
			if f.Elem != nil {
				walk([]Field{*f.Elem})
			}
		}
	}
	walk(fields)
	return nil
}

// defaultValue parses f's default; a default that does not parse is a programming error.
func (p *Parser) defaultValue(f *Field, path string, at diag.Pos) *Value {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(f.Default), &doc); err != nil {
		panic(fmt.Sprintf("spec: bad default %q for %s: %v", f.Default, f.Name, err)) // a programming error, caught by the spec tests
	}
	quiet := &Parser{File: p.File, Diags: &diag.List{}, parsingDefault: true}
	v := quiet.Parse(Resolve(&doc), f, path, at)
	if len(*quiet.Diags) > 0 {
		panic(fmt.Sprintf("spec: invalid default %q for %s: %v", f.Default, f.Name, quiet.Diags.Err()))
	}
	v.Node, v.Pos, v.Set = nil, at, false
	return v
}

// Parse parses one value against f. keyPos is where its key is, used when the value is null.
func (p *Parser) Parse(n *yaml.Node, f *Field, path string, keyPos diag.Pos) *Value {
	n = Resolve(n)
	v := &Value{Field: f, Node: n, Pos: keyPos, Path: path, Set: true}
	if IsNull(n) {
		if f.Required {
			p.Errorf(keyPos, path, "missing value for %q (%s)", f.Name, f.Doc)
		}
		v.Set = false
		if f.Default != "" {
			return p.defaultValue(f, path, keyPos)
		}
		return v
	}
	v.Pos = p.Pos(n)
	if n.Kind == yaml.ScalarNode {
		p.Scalars = append(p.Scalars, ScalarRef{Node: n, Pos: v.Pos, Path: path})
		v.subst = p.Substituted[n]
	}
	switch f.Kind {
	case KindObject:
		obj := p.ParseObject(n, f.Fields, path, keyPos)
		obj.Field = f
		return obj
	case KindRaw:
		return v
	case KindList:
		p.parseList(n, f, v)
	case KindMap:
		p.parseMap(n, f, v)
	case KindStrings:
		p.parseStrings(n, f, v)
	default:
		if n.Kind != yaml.ScalarNode {
			p.Errorf(v.Pos, path, "expected %s, got %s", expectText(f), describe(n))
			return v
		}
		before := p.Diags.Errors()
		p.parseScalar(n, f, v)
		if p.Diags.Errors() > before && f.Default != "" && !p.parsingDefault {
			// Reported; go on with the default so that checks between fields stay quiet.
			d := p.defaultValue(f, path, v.Pos)
			d.Node, d.Set = n, true
			return d
		}
	}
	return v
}

func (p *Parser) parseList(n *yaml.Node, f *Field, v *Value) {
	if n.Kind != yaml.SequenceNode {
		p.Errorf(v.Pos, v.Path, "expected a list, got %s", describe(n))
		return
	}
	for i, c := range n.Content {
		v.Items = append(v.Items, p.Parse(c, f.Elem, fmt.Sprintf("%s[%d]", v.Path, i), p.Pos(c)))
	}
	if f.NonEmpty && len(v.Items) == 0 {
		p.Errorf(v.Pos, v.Path, "must not be empty")
	}
}

func (p *Parser) parseMap(n *yaml.Node, f *Field, v *Value) {
	if n.Kind != yaml.MappingNode {
		p.Errorf(v.Pos, v.Path, "expected a mapping, got %s", describe(n))
		return
	}
	seen := map[string]bool{}
	for _, kv := range MappingPairs(n) {
		k := kv[0]
		kpath := join(v.Path, k.Value)
		if seen[k.Value] {
			p.Errorf(p.Pos(k), kpath, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		v.Entries = append(v.Entries, Entry{Key: k.Value, KeyPos: p.Pos(k), Value: p.Parse(kv[1], f.Elem, kpath, p.Pos(k))})
	}
	if f.NonEmpty && len(v.Entries) == 0 {
		p.Errorf(v.Pos, v.Path, "must not be empty")
	}
}

func (p *Parser) parseStrings(n *yaml.Node, f *Field, v *Value) {
	elem := &Field{Name: f.Name, Kind: KindString, Doc: f.Doc}
	switch n.Kind {
	case yaml.ScalarNode:
		parts := []string{n.Value}
		if f.CommaList {
			parts = strings.Split(n.Value, ",")
		}
		for _, s := range parts {
			if s = strings.TrimSpace(s); s != "" {
				v.Items = append(v.Items, &Value{Field: elem, Node: n, Pos: v.Pos, Path: v.Path, Set: true, Str: s})
			}
		}
		if len(v.Items) == 1 && v.Items[0].Str == n.Value {
			v.Items[0].subst = v.subst
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			c = Resolve(c)
			ipath := fmt.Sprintf("%s[%d]", v.Path, i)
			if c.Kind != yaml.ScalarNode || IsNull(c) {
				p.Errorf(p.Pos(c), ipath, "expected a string, got %s", describe(c))
				continue
			}
			p.Scalars = append(p.Scalars, ScalarRef{Node: c, Pos: p.Pos(c), Path: ipath})
			v.Items = append(v.Items, &Value{Field: elem, Node: c, Pos: p.Pos(c), Path: ipath, Set: true, Str: c.Value,
				subst: p.Substituted[c]})
		}
	default:
		p.Errorf(v.Pos, v.Path, "expected a string or a list of strings, got %s", describe(n))
		return
	}
	if f.NonEmpty && len(v.Items) == 0 {
		p.Errorf(v.Pos, v.Path, "must not be empty")
	}
}

func (p *Parser) parseScalar(n *yaml.Node, f *Field, v *Value) {
	text := n.Value
	shown := strconv.Quote(text)
	if f.Secret {
		shown = "(secret value hidden)"
	}
	v.Str = text
	switch f.Kind {
	case KindString:
	case KindExpr:
		v.expr = p.exprOrigin(n)
		if strings.TrimSpace(text) == "" {
			p.Errorf(v.Pos, v.Path, "empty expression")
		}
	case KindInt:
		i, err := strconv.ParseInt(strings.ReplaceAll(text, "_", ""), 0, 64)
		if err != nil || n.Tag != "!!int" {
			p.Errorf(v.Pos, v.Path, "expected a whole number, got %s", shown)
			return
		}
		v.IntVal, v.FloatVal = i, float64(i)
		p.checkRange(f, v, float64(i))
	case KindFloat:
		x, err := strconv.ParseFloat(text, 64)
		if err != nil || (n.Tag != "!!float" && n.Tag != "!!int") || math.IsNaN(x) {
			p.Errorf(v.Pos, v.Path, "expected a number, got %s", shown)
			return
		}
		v.FloatVal = x
		p.checkRange(f, v, x)
	case KindBool:
		if n.Tag != "!!bool" {
			p.Errorf(v.Pos, v.Path, "expected true or false, got %s", shown)
			return
		}
		v.BoolVal = strings.EqualFold(text, "true")
	case KindDuration:
		d, err := time.ParseDuration(text)
		switch {
		case err != nil && n.Tag == "!!int":
			p.Errorf(v.Pos, v.Path, "a duration needs a unit: write %ss or %sms", text, text)
		case err != nil:
			p.Errorf(v.Pos, v.Path, "expected a duration such as 500ms, 5s or 1m30s, got %s", shown)
		case d < 0:
			p.Errorf(v.Pos, v.Path, "a duration cannot be negative")
		default:
			v.Dur = d
		}
	case KindSize:
		b, err := ParseSize(text)
		if err != nil {
			p.Errorf(v.Pos, v.Path, "expected a size in bytes such as 1048576, 512KiB or 1MB, got %s", shown)
			return
		}
		v.IntVal = b
		p.checkRange(f, v, float64(b))
	case KindEnum:
		for _, allowed := range f.Values {
			if strings.EqualFold(text, allowed) {
				v.Str = allowed
				return
			}
		}
		p.Errorf(v.Pos, v.Path, "%s is not one of %s%s", shown, strings.Join(f.Values, ", "), diag.DidYouMean(text, f.Values))
	}
}

func (p *Parser) checkRange(f *Field, v *Value, x float64) {
	if f.Min != nil && x < *f.Min {
		p.Errorf(v.Pos, v.Path, "must be at least %v, got %v", *f.Min, x)
	}
	if f.Max != nil && x > *f.Max {
		p.Errorf(v.Pos, v.Path, "must be at most %v, got %v", *f.Max, x)
	}
}

// exprOrigin works out where the text of an expression scalar starts in the file.
func (p *Parser) exprOrigin(n *yaml.Node) exprOrigin {
	o := exprOrigin{line: n.Line, col: n.Column}
	switch n.Style {
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		o.col++
	case yaml.LiteralStyle, yaml.FoldedStyle:
		o.block = true
		o.line = n.Line + 1
		o.indent = 1
		for l := n.Line; l < len(p.Lines); l++ { // p.Lines[l] is file line l+1
			if s := p.Lines[l]; strings.TrimSpace(s) != "" {
				o.line = l + 1
				o.indent = len(s) - len(strings.TrimLeft(s, " ")) + 1
				break
			}
		}
	}
	return o
}

// ParseSize reads a byte size: a whole number of bytes, or a number with a unit
// B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '_' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i:])
	}
	mult := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}[strings.ToLower(unit)]
	x, err := strconv.ParseFloat(strings.ReplaceAll(num, "_", ""), 64)
	if err != nil || mult == 0 || x < 0 || x*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return int64(x * mult), nil
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "nothing"
		}
		return "a " + strings.TrimPrefix(n.Tag, "!!") + " " + strconv.Quote(n.Value)
	}
	return "something else"
}

func expectText(f *Field) string {
	switch f.Kind {
	case KindEnum:
		return "one of " + strings.Join(f.Values, ", ")
	case KindExpr:
		return "an expression"
	case KindInt:
		return "a whole number"
	}
	return "a " + f.Kind.String()
}

func fieldList(fields []Field) string {
	if len(fields) > 6 {
		return "fields such as " + strings.Join(Names(fields[:6]), ", ")
	}
	return strings.Join(Names(fields), ", ")
}

// CheckFile reports a file named by v (relative to baseDir) that cannot be read.
func (p *Parser) CheckFile(v *Value, baseDir string) {
	if !v.Set || v.Str == "" {
		return
	}
	name := v.Str
	if !filepath.IsAbs(name) {
		name = filepath.Join(baseDir, name)
	}
	st, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.Errorf(v.Pos, v.Path, "file %q does not exist (a relative name is read from the pipeline file's folder)", v.Str)
	case err != nil:
		p.Errorf(v.Pos, v.Path, "cannot read file %q: %v", v.Str, errors.Unwrap(err))
	case st.IsDir():
		p.Errorf(v.Pos, v.Path, "%q is a folder, not a file", v.Str)
	}
}
