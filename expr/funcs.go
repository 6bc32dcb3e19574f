package expr

import (
	"fmt"
	"net/url"
	"time"

	exprlang "github.com/expr-lang/expr"
)

// Functions are the functions pythia-pipe adds to expr-lang's builtins, with their docs.
var Functions = []FuncDoc{
	{"urlquery", "urlquery(v) string", "escapes v for a URL's query: `urlquery(\"a b&c\")` is `\"a+b%26c\"`"},
	{"urlpath", "urlpath(v) string", "escapes v for one segment of a URL's path: `urlpath(\"a/b c\")` is `\"a%2Fb%20c\"`"},
	{"rfc3339", "rfc3339(t) string", "the time t as RFC 3339 text in UTC, to the millisecond (Kafka's precision; always three digits, so that the texts sort as the times do), e.g. `rfc3339(timestamp)`: " +
		"`rfc3339(date(\"2026-11-26T21:18:38.1+01:00\"))` is `\"2026-11-26T20:18:38.100Z\"`"},
}

// rfc3339Millis is RFC 3339 with milliseconds, always three digits.
const rfc3339Millis = "2006-01-02T15:04:05.000Z07:00"

// functions are the expr-lang options that define Functions.
var functions = []exprlang.Option{
	exprlang.Function("urlquery", func(args ...any) (any, error) { return url.QueryEscape(text(args[0])), nil },
		new(func(any) string)),
	exprlang.Function("urlpath", func(args ...any) (any, error) { return url.PathEscape(text(args[0])), nil },
		new(func(any) string)),
	exprlang.Function("rfc3339", rfc3339, new(func(time.Time) string)),
}

// rfc3339 is t as RFC 3339 in UTC, to the millisecond. A value of no static type (a field
// of a body without a schema) may be anything at run time: that is an error, which names it.
func rfc3339(args ...any) (any, error) {
	t, ok := args[0].(time.Time)
	if !ok {
		return nil, fmt.Errorf("rfc3339(%s): not a time (a time field of a schema, timestamp, date(TEXT))", shown(args[0]))
	}
	return t.UTC().Format(rfc3339Millis), nil
}

// shown is v as an error message quotes it: a string quoted, nil as nil.
func shown(v any) string {
	switch t := v.(type) {
	case nil:
		return "nil"
	case string:
		return fmt.Sprintf("%q", t)
	}
	return fmt.Sprint(v)
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
