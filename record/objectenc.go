package record

import (
	"encoding/binary"
	"slices"
	"strings"
	"unsafe"
)

// appendJSON writes o as AppendJSON writes the map Map would make: fields sorted by name,
// each value as its decoded value is encoded, a Raw one as written less its spaces.
func (o *Object) appendJSON(dst []byte) ([]byte, error) {
	var small [maxLazyFields + 8]int32 // fields set beyond the body's are few
	order := small[:0]
	if len(o.fields) > len(small) {
		order = make([]int32, 0, len(o.fields))
	}
	for i := range o.fields {
		order = append(order, int32(i))
	}
	name := func(i int32) string { return o.fields[i].name }
	if len(order) > 12 {
		slices.SortFunc(order, func(a, b int32) int { return strings.Compare(name(a), name(b)) })
	} else {
		for i := 1; i < len(order); i++ {
			for j := i; j > 0 && name(order[j]) < name(order[j-1]); j-- {
				order[j], order[j-1] = order[j-1], order[j]
			}
		}
	}
	dst = append(dst, '{')
	for n, i := range order {
		if n > 0 {
			dst = append(dst, ',')
		}
		f := &o.fields[i]
		dst = appendString(dst, f.name)
		dst = append(dst, ':')
		var err error
		if f.start < 0 {
			dst, err = AppendJSON(dst, o.vals[f.end])
		} else {
			dst, err = o.appendField(dst, int(i))
		}
		if err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendField writes an unchanged field: its bytes where they are what its decoded value
// encodes to (or it is Raw), else its decoded value.
func (o *Object) appendField(dst []byte, i int) ([]byte, error) {
	f := &o.fields[i]
	b := o.body[f.start:f.end]
	switch c := b[0]; {
	case c == '"':
		if asWritten(b[1:len(b)-1]) || o.raw(f.name) {
			return append(dst, b...), nil
		}
		if strings.IndexByte(b, '\\') < 0 {
			return appendString(dst, b[1:len(b)-1]), nil
		}
	case c == 't' || c == 'f' || c == 'n':
		return append(dst, b...), nil
	case c == '{' || c == '[':
		if o.raw(f.name) {
			return appendCompact(dst, b), nil
		}
	default:
		if (integral(b) && b != "-0") || o.raw(f.name) {
			return append(dst, b...), nil
		}
		if integral(b) {
			return append(dst, '0'), nil
		}
		if v, ok := parseFloat(b); ok {
			return appendFloat(dst, v)
		}
		return append(dst, b...), nil // beyond float64: a json.Number, as written
	}
	return AppendJSON(dst, o.value(i))
}

// integral reports a number literal written as an integer: as DecodeJSON keeps it (an int,
// or a json.Number of its digits), it encodes as written, but for -0.
func integral(lit string) bool { return strings.IndexAny(lit, ".eE") < 0 }

// asWritten reports a string's contents (between its quotes) that appendString would write
// unchanged: no escapes, and nothing it escapes (<, >, &, U+2028, U+2029). Eight bytes at a
// time, as in plainRun; a byte from 0x80 on sends the rest to a closer look.
func asWritten(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
		a, l, g, bs := x^(ones*'&'), x^(ones*'<'), x^(ones*'>'), x^(ones*'\\')
		if ((a-ones)&^a|(l-ones)&^l|(g-ones)&^g|(bs-ones)&^bs|x)&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '<' || c == '>' || c == '&':
			return false
		case c >= 0x80:
			return !strings.Contains(s[i:], "\u2028") && !strings.Contains(s[i:], "\u2029") &&
				strings.IndexAny(s[i:], `\<>&`) < 0
		}
	}
	return true
}

// appendCompact appends the JSON value b less the space between its tokens, as json.Compact
// writes it: Raw fields are kept so.
func appendCompact(dst []byte, b string) []byte {
	inString := false
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			dst = append(dst, b[start:i]...)
			start = i + 1
		}
	}
	return append(dst, b[start:]...)
}
