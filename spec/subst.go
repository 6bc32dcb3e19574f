package spec

import (
	"strings"
	"unicode/utf8"
)

// Substitution is what ${VAR} substitution did to one scalar: the text as written in the file
// and where each substituted piece of the value came from. With it a position inside the value
// (an expression error) maps back to the file, and messages quote what the author wrote, with
// ${VAR} in it, never the value it stood for (often a secret).
type Substitution struct {
	Written string
	Edits   []Edit // in order
}

// Edit says that runes [From,To) of the value replaced runes [WFrom,WTo) of the written text.
type Edit struct{ From, To, WFrom, WTo int }

// toWritten maps a rune offset in the value to one in the written text; an offset inside a
// substituted piece maps to the start of its reference.
func (s *Substitution) toWritten(off int) int {
	shift := 0
	for _, e := range s.Edits {
		if off < e.From {
			break
		}
		if off < e.To {
			return e.WFrom
		}
		shift = e.WTo - e.To
	}
	return off + shift
}

// Written is the value's text as written in the file, before ${VAR} substitution.
func (v *Value) Written() string {
	if v.subst != nil {
		return v.subst.Written
	}
	return v.Str
}

// WrittenOffset maps a rune offset in Str to the matching rune offset in Written.
func (v *Value) WrittenOffset(off int) int {
	if v.subst == nil {
		return off
	}
	return v.subst.toWritten(off)
}

// minRedacted is the shortest substituted piece Redact hides: shorter ones ("1", "10") would
// turn every digit of a message into a reference, and are rarely secrets.
const minRedacted = 4

// Redact replaces, in a message about this value, every piece that ${VAR} substitution put into
// it by the reference as written: an error computed from the value (a failed conversion of a
// string literal) then names the variable instead of showing its content.
func (v *Value) Redact(msg string) string {
	if v.subst == nil {
		return msg
	}
	str := []rune(v.Str)
	written := []rune(v.subst.Written)
	for _, e := range v.subst.Edits {
		if e.To-e.From < minRedacted || e.To > len(str) || e.WTo > len(written) {
			continue
		}
		msg = strings.ReplaceAll(msg, string(str[e.From:e.To]), string(written[e.WFrom:e.WTo]))
	}
	return msg
}

// runeOffset is the rune offset of (line 1-based, col 0-based, in runes) in s.
func runeOffset(s string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		off += utf8.RuneCountInString(s[:i+1])
		s = s[i+1:]
	}
	return off + col
}

// lineCol is the inverse of runeOffset.
func lineCol(s string, off int) (line, col int) {
	line = 1
	for i, r := range []rune(s) {
		if i == off {
			break
		}
		if r == '\n' {
			line, col = line+1, 0
		} else {
			col++
		}
	}
	return line, col
}
