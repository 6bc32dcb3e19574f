package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// What a terminal acts on is written as an escape; the rest of the text as it is.
func TestEscapeControls(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain text", `{"order_id": "o-1", "note": "tab\there"}`, `{"order_id": "o-1", "note": "tab\there"}`},
		{"accents, CJK and emoji", "crème brûlée 東京 🍰", "crème brûlée 東京 🍰"},
		{"a backslash stays", `C:\temp\n`, `C:\temp\n`},
		{"newline", "a\nb", `a\nb`},
		{"carriage return", "a\rb", `a\rb`},
		{"tab", "a\tb", `a\tb`},
		{"ESC sequence", "\x1b[2J\x1b[Hclear", `\x1b[2J\x1b[Hclear`},
		{"OSC title with BEL", "\x1b]0;owned\x07", `\x1b]0;owned\x07`},
		{"NUL and backspace", "a\x00b\bc", `a\x00b\x08c`},
		{"DEL", "a\x7fb", `a\x7fb`},
		{"C1 CSI", "a\u009b31mred", `a\u009b31mred`},
		{"C1 NEL", "a\u0085b", `a\u0085b`},
		{"right-to-left override", "invoice\u202efdp.exe", `invoice\u202efdp.exe`},
		{"left-to-right embedding", "\u202aa", `\u202aa`},
		{"first strong isolate", "\u2068a\u2069", `\u2068a\u2069`},
		{"line and paragraph separators", "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"a byte that is not UTF-8", "a\xffb", `a\xffb`},
		{"no-break space and soft hyphen stay", "a\u00a0b\u00adc", "a\u00a0b\u00adc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := escapeControls(c.in); got != c.want {
				t.Fatalf("escapeControls(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// forged is a DLQ record written to pass for others in a listing and to drive the terminal.
func forged() *kafkaio.Message {
	return &kafkaio.Message{Topic: "orders-dlq", Partition: 0, Offset: 7, Timestamp: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		Key: []byte("k\x1b[2J\x1b[H"),
		Headers: []kafkaio.Header{
			{Key: "pythia.stage", Value: []byte("parse\r    pythia.stage: valid")},
			{Key: "h\x07\u009b", Value: []byte("\u202eevil")},
		},
		Value: []byte("x\n    pythia.error: forged\norders-dlq/0@8  2026-11-26T10:00:01Z  key=c9\n    value: {\"amount\": 1}\x7f"),
	}
}

// The table shows a forged record as one record of three lines, with no control character
// left.
func TestTableEscapesForgedRecord(t *testing.T) {
	var out bytes.Buffer
	printerFor("table", &out)(forged())
	want := `orders-dlq/0@7  2026-11-26T10:00:00Z  key=k\x1b[2J\x1b[H
    pythia.stage: parse\r    pythia.stage: valid
    h\x07\u009b: \u202eevil
    value: x\n    pythia.error: forged\norders-dlq/0@8  2026-11-26T10:00:01Z  key=c9\n    value: {"amount": 1}\x7f
`
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

// The JSON view writes no control character either (encoding/json leaves DEL, C1 and the
// bidirectional characters as they are), and reads back as the record's bytes: a value that
// is JSON stays JSON.
func TestJSONEscapesForgedRecord(t *testing.T) {
	rec := forged()
	rec.Value = []byte("{\"note\": \"a\x7fb\u009bc\u202ed\u2028e\"}")
	var out bytes.Buffer
	printerFor("json", &out)(rec)
	line := strings.TrimSuffix(out.String(), "\n")
	if strings.Count(out.String(), "\n") != 1 || strings.ContainsFunc(line, unsafeRune) || !utf8.ValidString(line) {
		t.Fatalf("a raw control character in %q", out.String())
	}
	var got struct {
		Key     string            `json:"key"`
		Headers map[string]string `json:"headers"`
		Value   map[string]string `json:"value"`
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatal(err)
	}
	if got.Key != string(rec.Key) || got.Headers["pythia.stage"] != "parse\r    pythia.stage: valid" || got.Headers["h\x07\u009b"] != "\u202eevil" ||
		got.Value["note"] != "a\x7fb\u009bc\u202ed\u2028e" {
		t.Fatalf("read back %+v", got)
	}
}
