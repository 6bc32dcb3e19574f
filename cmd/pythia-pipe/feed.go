package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/pythia-pipe/pythia-pipe/devkit"
	"github.com/pythia-pipe/pythia-pipe/diag"
)

// feedLineLimit is the longest line a feed may hold, 1 MiB: the size of the largest record a
// broker takes by default.
const feedLineLimit = 1 << 20

// envelopeFields are the fields a JSON-lines envelope may have.
var envelopeFields = map[string]bool{"key": true, "value": true, "headers": true, "timestamp": true}

// readFeed reads dev's --feed: one record per non-empty line. A line that is a JSON object with
// a "value" and no fields but key, value, headers and timestamp is an envelope (see
// feedEnvelope); any other line is the value as it is, or KEY<TAB>VALUE. Records without a
// timestamp of their own get now. Errors name the file and line.
func readFeed(path string, now time.Time) ([]devkit.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseFeed(path, f, now)
}

func parseFeed(name string, r io.Reader, now time.Time) ([]devkit.Record, error) {
	var out []devkit.Record
	sc := bufio.NewScanner(r)
	// Room for the limit and a line's \r\n: a longer line fails the scan, or the length check.
	sc.Buffer(make([]byte, 64<<10), feedLineLimit+2)
	tooLong := func(n int) error {
		return fmt.Errorf("%s:%d: the line is longer than 1 MiB (%d bytes), the longest a feed line may be", name, n, feedLineLimit)
	}
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(line) > feedLineLimit {
			return nil, tooLong(n)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if fields, ok := envelope(line); ok {
			rec, err := feedEnvelope(fields, line, now)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
			out = append(out, rec)
			continue
		}
		rec := devkit.Record{Timestamp: now}
		if k, v, ok := bytes.Cut(line, []byte("\t")); ok {
			rec.Key, rec.Value = bytes.Clone(k), bytes.Clone(v)
		} else {
			rec.Value = bytes.Clone(line)
		}
		out = append(out, rec)
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return nil, tooLong(n + 1)
	case err != nil:
		return nil, fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	return out, nil
}

// envelope returns the fields of a line that is an envelope: a JSON object that has a "value"
// and no field but key, value, headers and timestamp. ok is false for any other line, which is
// a value as it is: an order {"id": 1} or {} stays a value, and so does a line that is not
// JSON.
func envelope(line []byte) (fields map[string]json.RawMessage, ok bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &fields) != nil {
		return nil, false
	}
	if _, ok := fields["value"]; !ok {
		return nil, false
	}
	for k := range fields {
		if !envelopeFields[k] {
			return nil, false
		}
	}
	return fields, true
}

// feedEnvelope is the record an envelope describes: its value a JSON object or array (written
// as its compact JSON text), a string (written as it is) or null (a tombstone); its key a
// string or null (or absent); headers an object of strings; timestamp RFC 3339 or a number of
// milliseconds since the epoch (now when absent or null).
func feedEnvelope(fields map[string]json.RawMessage, line []byte, now time.Time) (devkit.Record, error) {
	rec := devkit.Record{Timestamp: now}
	v := fields["value"]
	switch kind(v) {
	case "null":
	case "a string":
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return rec, fmt.Errorf("value: %w", err)
		}
		rec.Value = []byte(s)
	case "an object", "an array":
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return rec, fmt.Errorf("value: %w", err)
		}
		rec.Value = b.Bytes()
	default:
		return rec, fmt.Errorf("value: %s is %s; an envelope's value is a JSON object or array, a string (written as it is) or null (a tombstone); "+
			"to feed this line itself as a value, make it one: {\"value\": %s}", v, kind(v), diag.Abbreviate(string(bytes.TrimSpace(line)), 60))
	}
	if k, ok := fields["key"]; ok {
		switch kind(k) {
		case "null":
		case "a string":
			var s string
			if err := json.Unmarshal(k, &s); err != nil {
				return rec, fmt.Errorf("key: %w", err)
			}
			rec.Key = []byte(s)
		default:
			return rec, fmt.Errorf("key: %s is %s; a key is a string or null", diag.Abbreviate(string(k), 40), kind(k))
		}
	}
	if h, ok := fields["headers"]; ok && kind(h) != "null" {
		var raw map[string]json.RawMessage
		if kind(h) != "an object" || json.Unmarshal(h, &raw) != nil {
			return rec, fmt.Errorf("headers: %s is %s; headers are an object of strings, e.g. {\"source\": \"web\"}", diag.Abbreviate(string(h), 40), kind(h))
		}
		rec.Headers = make(map[string]string, len(raw))
		for name, hv := range raw {
			var s string
			if kind(hv) != "a string" || json.Unmarshal(hv, &s) != nil {
				return rec, fmt.Errorf("headers.%s: %s is %s; a header's value is a string", name, diag.Abbreviate(string(hv), 40), kind(hv))
			}
			rec.Headers[name] = s
		}
	}
	if ts, ok := fields["timestamp"]; ok {
		at, err := feedTime(ts)
		if err != nil {
			return rec, fmt.Errorf("timestamp: %w", err)
		}
		if !at.IsZero() {
			rec.Timestamp = at
		}
	}
	return rec, nil
}

// feedTime reads an envelope's timestamp: RFC 3339 or whole milliseconds since the epoch;
// zero for null.
func feedTime(ts json.RawMessage) (time.Time, error) {
	const want = `RFC 3339 (e.g. "2026-11-26T10:00:00Z") or milliseconds since the epoch (e.g. 1795687200000)`
	switch kind(ts) {
	case "null":
		return time.Time{}, nil
	case "a string":
		var s string
		if err := json.Unmarshal(ts, &s); err != nil {
			return time.Time{}, err
		}
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not %s", s, want)
		}
		return at, nil
	case "a number":
		ms, err := strconv.ParseInt(string(ts), 10, 64)
		if err != nil || ms < 0 {
			return time.Time{}, fmt.Errorf("%s is not %s: a number is whole milliseconds, 0 or more", ts, want)
		}
		return time.UnixMilli(ms), nil
	}
	return time.Time{}, fmt.Errorf("%s is %s, not %s", diag.Abbreviate(string(ts), 40), kind(ts), want)
}

// kind names the kind of a JSON value, as messages say it.
func kind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
