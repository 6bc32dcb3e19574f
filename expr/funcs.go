package expr

import (
	"fmt"
	"net/url"
	"time"

	exprlang "github.com/expr-lang/expr"
)

// Functions are the functions pythia-pipe adds to expr-lang's builtins, with their docs.
var Functions = []struct{ Name, Sig, Doc string }{
	{"urlquery", "urlquery(v) string", "escapes v for a URL's query: `urlquery(\"a b&c\")` is `a+b%26c`"},
	{"urlpath", "urlpath(v) string", "escapes v for one segment of a URL's path: `urlpath(\"a/b c\")` is `a%2Fb%20c`"},
}

// functions are the expr-lang options that define Functions.
var functions = []exprlang.Option{
	exprlang.Function("urlquery", func(args ...any) (any, error) { return url.QueryEscape(text(args[0])), nil },
		new(func(any) string)),
	exprlang.Function("urlpath", func(args ...any) (any, error) { return url.PathEscape(text(args[0])), nil },
		new(func(any) string)),
}

// text is v as it reads in a URL: strings and bytes as they are, nil as "", else its
// default text form.
func text(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case []byte:
		return string(t)
	case time.Time:
		return t.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}
