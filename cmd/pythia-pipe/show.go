package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// Records for people (tap's listing, dlq replay's dry run, dev's samples): whatever a record
// holds, what is printed can neither forge other records in the listing nor drive the
// terminal.

// shown is bytes for reading: text with its control characters escaped, null for none,
// base64 for the rest.
func shown(b []byte) string {
	if b != nil && utf8.Valid(b) {
		return escapeControls(string(b))
	}
	return text(b)
}

// text is bytes as text: as they are when UTF-8 (for a JSON string, which escapes them), null
// for none, base64 for the rest.
func text(b []byte) string {
	switch {
	case b == nil:
		return "null"
	case utf8.Valid(b):
		return string(b)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(b)
}

// escapeControls writes as escapes (\n, \r, \t, \x1b, \u202e) the characters that move the
// cursor, change the terminal's state or reorder what it shows, and the bytes that are not
// UTF-8. The rest stays as it is, a backslash too: a listing is read, not parsed, and JSON
// values stay legible.
func escapeControls(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unsafeRune(r) && r < utf8.RuneSelf:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		s = s[size:]
	}
	return b.String()
}

// unsafeRune reports the characters a terminal acts on or reorders text by: the C0 controls
// (newline, carriage return and ESC among them), DEL, the C1 controls (U+0080–U+009F: some
// terminals take U+009B as ESC [), the bidirectional overrides and isolates, and the line and
// paragraph separators.
func unsafeRune(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x2028 || r == 0x2029
}

// printerFor writes records as a table for reading, or as JSON lines.
func printerFor(format string, w io.Writer) func(*kafkaio.Message) {
	if format == "json" {
		return func(r *kafkaio.Message) { w.Write(jsonLine(r)) }
	}
	return func(r *kafkaio.Message) {
		fmt.Fprintf(w, "%s/%d@%d  %s  key=%s\n", r.Topic, r.Partition, r.Offset, r.Timestamp.UTC().Format(time.RFC3339Nano), shown(r.Key))
		for _, h := range r.Headers {
			fmt.Fprintf(w, "    %s: %s\n", escapeControls(h.Key), shown(h.Value))
		}
		fmt.Fprintf(w, "    value: %s\n", shown(r.Value))
	}
}

// jsonLine is a record as one line of JSON (tapLine), ending in a newline.
func jsonLine(r *kafkaio.Message) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tapLine(r)); err != nil {
		return nil // the line holds strings and valid JSON only: nothing fails
	}
	return append(escapeJSON(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), '\n')
}

// tapLine is a record as one JSON object: a JSON value as JSON, other text as a string, bytes
// that are not UTF-8 as base64.
func tapLine(r *kafkaio.Message) map[string]any {
	line := map[string]any{"topic": r.Topic, "partition": r.Partition, "offset": r.Offset,
		"timestamp": r.Timestamp.UTC().Format(time.RFC3339Nano), "key": nil, "value": nil}
	if r.Key != nil {
		line["key"] = text(r.Key)
	}
	switch {
	case r.Value == nil:
	case utf8.Valid(r.Value) && json.Valid(r.Value):
		line["value"] = json.RawMessage(r.Value)
	default:
		line["value"] = text(r.Value)
	}
	if len(r.Headers) > 0 {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = text(x.Value)
		}
		line["headers"] = h
	}
	return line
}

// escapeJSON writes the unsafe characters encoding/json leaves in a line as \u escapes: it
// escapes the C0 controls but not DEL, the C1 controls or the bidirectional ones, nor, with
// HTML escaping off, U+2028 and U+2029 in a raw value. They can only stand inside strings,
// where the escape means the same character.
func escapeJSON(line []byte) []byte {
	if !bytes.ContainsFunc(line, unsafeRune) {
		return line
	}
	out := make([]byte, 0, len(line)+16)
	for len(line) > 0 {
		r, size := utf8.DecodeRune(line)
		if unsafeRune(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, line[:size]...)
		}
		line = line[size:]
	}
	return out
}
