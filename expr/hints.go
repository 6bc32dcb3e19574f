package expr

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

var (
	bareURL  = regexp.MustCompile(`^\s*[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^\s{}]|\{[^{}]*\})*\s*$`)
	urlBrace = regexp.MustCompile(`\{([^{}]+)\}`)
)

// compileHint is what to add to expr-lang's message msg about v, which did not compile: the
// likely intended name, operator or form. at is true when the message belongs at the start of
// the expression rather than where expr-lang stopped.
func (e Env) compileHint(msg string, v *spec.Value) (hint string, at bool) {
	if m := unknownName.FindStringSubmatch(msg); m != nil {
		if m[1] == "name" && regexp.MustCompile(`(^|[^\w.])`+regexp.QuoteMeta(m[2])+`\s*\(`).MatchString(v.Str) {
			return diag.DidYouMean(m[2], FuncNames()), false
		}
		return e.hint(m[1], m[2]), false
	}
	if written := v.Written(); bareURL.MatchString(written) {
		return ": this field is an expression, in which a URL is a string literal: write '" + strings.ReplaceAll(urlLiteral(strings.TrimSpace(written)), "'", "''") + "'", true
	}
	if msg == `unexpected token Operator("=")` {
		return " (did you mean ==?)", false
	}
	return "", false
}

// urlLiteral is the expression a URL written bare means: a string literal, each {…} in it an
// expression joined in, escaped for the path or, past the ?, for the query.
func urlLiteral(url string) string {
	var b strings.Builder
	b.WriteString(`"`)
	last := 0
	for _, m := range urlBrace.FindAllStringSubmatchIndex(url, -1) {
		escape := "urlpath"
		if strings.Contains(url[:m[0]], "?") {
			escape = "urlquery"
		}
		fmt.Fprintf(&b, `%s" + %s(%s)`, url[last:m[0]], escape, strings.TrimSpace(url[m[2]:m[3]]))
		last = m[1]
		if last < len(url) {
			b.WriteString(` + "`)
		}
	}
	if last < len(url) || last == 0 {
		b.WriteString(url[last:] + `"`)
	}
	return b.String()
}

// FuncNames lists the functions an expression can call: expr-lang's builtins and pythia-pipe's.
func FuncNames() []string {
	var names []string
	for _, g := range Builtins {
		for _, f := range g.Funcs {
			names = append(names, f.Name)
		}
	}
	for _, f := range Functions {
		names = append(names, f.Name)
	}
	return names
}
