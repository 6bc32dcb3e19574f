package pipetest

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// compareSink compares what sink received with what it expects, record by record in input
// order, and says every difference.
func compareSink(sink string, want []Expected, got []output) []string {
	var out []string
	if len(want) != len(got) {
		out = append(out, fmt.Sprintf("%s: expected %d record(s), got %d", sink, len(want), len(got)))
	}
	for i := range max(len(want), len(got)) {
		switch {
		case i >= len(got):
			out = append(out, fmt.Sprintf("%s record %d (line %d): missing", sink, i+1, want[i].Line))
		case i >= len(want):
			out = append(out, fmt.Sprintf("%s record %d: not expected, got %s", sink, i+1, show(got[i])))
		default:
			if diffs := compareRecord(want[i], got[i]); len(diffs) > 0 {
				out = append(out, fmt.Sprintf("%s record %d (line %d), from input %d: %s\n    got %s", sink, i+1, want[i].Line, got[i].input+1,
					strings.Join(diffs, "; "), show(got[i])))
			}
		}
	}
	return out
}

// compareRecord lists how got differs from what e names.
func compareRecord(e Expected, o output) []string {
	w := o.written
	var diffs []string
	if e.Key != nil && !equalBytes(*e.Key, w.Key) {
		diffs = append(diffs, fmt.Sprintf("key: expected %s, got %s", showBytes(*e.Key), showBytes(w.Key)))
	}
	if e.Topic != "" && e.Topic != w.Topic {
		diffs = append(diffs, fmt.Sprintf("topic: expected %q, got %q", e.Topic, w.Topic))
	}
	headers := map[string]string{}
	for _, h := range w.Headers {
		headers[h.Key] = string(h.Value)
	}
	names := make([]string, 0, len(e.Headers))
	for k := range e.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if v, ok := headers[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("headers.%s: missing (expected %q)", k, e.Headers[k]))
		} else if v != e.Headers[k] {
			diffs = append(diffs, fmt.Sprintf("headers.%s: expected %q, got %q", k, e.Headers[k], v))
		}
	}
	failed, _ := dlq.Decode(w.Headers) // reason and stage are strings: nothing to misread
	if e.Reason != "" && !strings.Contains(failed.Failure.Reason, e.Reason) {
		diffs = append(diffs, fmt.Sprintf("reason: expected it to say %q, it is %q", e.Reason, failed.Failure.Reason))
	}
	if e.Stage != "" && failed.Failure.Stage != e.Stage {
		diffs = append(diffs, fmt.Sprintf("stage: expected %q, got %q", e.Stage, failed.Failure.Stage))
	}
	if e.Value != nil {
		diffs = append(diffs, compareValue(e, w.Value)...)
	}
	return diffs
}

func compareValue(e Expected, got []byte) []string {
	n := e.Value
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!str" || n.Tag == "!!null") {
		want, _ := bodyOf(n)
		if !equalBytes(want, got) {
			return []string{fmt.Sprintf("value: expected %s, got %s", showBytes(want), showBytes(got))}
		}
		return nil
	}
	body, err := bodyOf(n)
	if err != nil {
		return []string{"value: " + err.Error()}
	}
	want, err := record.DecodeJSON(body)
	if err != nil {
		return []string{"value: " + err.Error()}
	}
	if got == nil {
		return []string{"value: expected a body, got null"}
	}
	have, err := record.DecodeJSON(got)
	if err != nil {
		return []string{fmt.Sprintf("value: expected JSON, got %s", showBytes(got))}
	}
	var diffs []string
	match("value", want, have, !e.Exact, &diffs)
	return diffs
}

// match compares want with have at path; subset: an object's fields that want leaves out
// are not compared.
func match(path string, want, have any, subset bool, diffs *[]string) {
	wm, wok := want.(map[string]any)
	hm, hok := have.(map[string]any)
	if !wok || !hok {
		if !equalValue(want, have) {
			*diffs = append(*diffs, fmt.Sprintf("%s: expected %s, got %s", path, showValue(want), showValue(have)))
		}
		return
	}
	keys := make([]string, 0, len(wm))
	for k := range wm {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h, ok := hm[k]
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s.%s: missing (expected %s)", path, k, showValue(wm[k])))
			continue
		}
		match(path+"."+k, wm[k], h, subset, diffs)
	}
	if subset {
		return
	}
	extra := []string{}
	for k := range hm {
		if _, ok := wm[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		*diffs = append(*diffs, fmt.Sprintf("%s.%s: not expected, got %s", path, k, showValue(hm[k])))
	}
}

// equalValue compares decoded JSON values; numbers by value (1250 and 1250.0 are equal).
func equalValue(a, b any) bool {
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		var diffs []string
		match("", a, b, false, &diffs)
		_, ok := b.(map[string]any)
		return ok && len(diffs) == 0
	}
	return a == b
}

// number is a JSON number in one spelling for all that are equal: integers in decimal, a
// float that is a whole number within int64 as that integer.
func number(v any) (string, bool) {
	switch x := v.(type) {
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e18 {
			return strconv.FormatInt(int64(x), 10), true
		}
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case json.Number:
		return string(x), true
	}
	return "", false
}

func equalBytes(a, b []byte) bool { return (a == nil) == (b == nil) && string(a) == string(b) }

func showBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	return fmt.Sprintf("%q", b)
}

// showValue is v as JSON, with <, > and & as they are (this is for reading).
func showValue(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// show is a received record as one JSON line.
func show(o output) string {
	w := o.written
	line := map[string]any{}
	if w.Key != nil {
		line["key"] = string(w.Key)
	} else {
		line["key"] = nil
	}
	if v, err := record.DecodeJSON(w.Value); err == nil && w.Value != nil {
		line["value"] = v
	} else if w.Value != nil {
		line["value"] = string(w.Value)
	} else {
		line["value"] = nil
	}
	if w.Topic != "" {
		line["topic"] = w.Topic
	}
	if len(w.Headers) > 0 {
		h := map[string]any{}
		for _, x := range w.Headers {
			h[x.Key] = string(x.Value)
		}
		line["headers"] = h
	}
	return showValue(line)
}
