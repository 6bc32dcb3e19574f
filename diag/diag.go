// Package diag holds positioned diagnostics and prints them the way a compiler does:
// "FILE:LINE:COL: path: message", then the source line and a caret under the column.
package diag

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Pos is a position in a pipeline file. Line and Col are 1-based; Col counts runes.
// The zero Pos means "no position" (a problem of the file as a whole).
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// Diagnostic is one problem found in a pipeline file: an error, or a warning (the file is
// valid, but probably does not do what its author wants).
type Diagnostic struct {
	Pos     Pos
	Path    string // the field, e.g. "stages[1].when"; empty for file-level problems
	Msg     string
	Warning bool
}

func (d Diagnostic) Error() string {
	msg := d.Msg
	if d.Warning {
		msg = "warning: " + msg
	}
	if d.Path == "" {
		return d.Pos.String() + ": " + msg
	}
	return d.Pos.String() + ": " + d.Path + ": " + msg
}

// List collects diagnostics; no single problem stops the others from being found.
type List []Diagnostic

// Add records a problem at pos.
func (l *List) Add(pos Pos, path, format string, args ...any) {
	*l = append(*l, Diagnostic{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Warn records a warning at pos.
func (l *List) Warn(pos Pos, path, format string, args ...any) {
	*l = append(*l, Diagnostic{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// Errors counts the errors, leaving out the warnings: what a step compares before and after
// to learn whether it found a problem.
func (l List) Errors() int {
	n := 0
	for _, d := range l {
		if !d.Warning {
			n++
		}
	}
	return n
}

// Count says how many errors and warnings the list holds: "3 errors", "1 error and 1 warning".
func (l List) Count() string {
	errs := l.Errors()
	out := plural(errs, "error")
	if w := len(l) - errs; w > 0 {
		out += " and " + plural(w, "warning")
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Split separates errors from warnings, keeping their order.
func (l List) Split() (errs, warnings List) {
	for _, d := range l {
		if d.Warning {
			warnings = append(warnings, d)
		} else {
			errs = append(errs, d)
		}
	}
	return errs, warnings
}

// Sort orders the list by file, line, column, then path and message, dropping exact repeats.
func (l *List) Sort() {
	s := *l
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Msg < b.Msg
	})
	out := s[:0]
	for i, d := range s {
		if i > 0 && d == s[i-1] {
			continue
		}
		out = append(out, d)
	}
	*l = out
}

// Err returns the list as an error, or nil when it is empty.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return Error{List: l}
}

// Error wraps a non-empty List so that it can travel as an error.
type Error struct{ List List }

func (e Error) Error() string {
	lines := make([]string, len(e.List))
	for i, d := range e.List {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// AsList extracts the diagnostics carried by err, if any.
func AsList(err error) (List, bool) {
	var e Error
	if errors.As(err, &e) {
		return e.List, true
	}
	return nil, false
}

// Sources gives the original text of the files diagnostics point into.
type Sources map[string][]byte

// Print writes every diagnostic with its source line and a caret, followed by a count.
func Print(w io.Writer, l List, src Sources) {
	for _, d := range l {
		fmt.Fprintln(w, d.Error())
		line, ok := sourceLine(src[d.Pos.File], d.Pos.Line)
		if !ok {
			continue
		}
		num := fmt.Sprintf("%d", d.Pos.Line)
		pad := strings.Repeat(" ", len(num))
		fmt.Fprintf(w, " %s | %s\n", num, line)
		fmt.Fprintf(w, " %s | %s^\n", pad, caretPad(line, d.Pos.Col))
	}
}

func sourceLine(src []byte, n int) (string, bool) {
	if src == nil || n < 1 {
		return "", false
	}
	lines := Lines(src)
	if n > len(lines) {
		return "", false
	}
	return strings.ReplaceAll(lines[n-1], "\t", " "), true
}

// Lines splits text into lines the way YAML counts them: \n, \r\n and a lone \r all end a line.
func Lines(src []byte) []string {
	return strings.Split(NormalizeNewlines(string(src)), "\n")
}

// NormalizeNewlines turns \r\n and lone \r into \n.
func NormalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// caretPad returns the blanks that put a caret under rune column col of line.
func caretPad(line string, col int) string {
	n := col - 1
	if n < 0 {
		n = 0
	}
	if r := []rune(line); n > len(r) {
		n = len(r)
	}
	return strings.Repeat(" ", n)
}
