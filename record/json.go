package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// ErrInvalidUTF8 is a JSON document with bytes that are not UTF-8. encoding/json would turn
// them into U+FFFD without a word, so a record would come out changed; it is an error instead.
var ErrInvalidUTF8 = errors.New("invalid UTF-8")

// JSONError is a document that is not JSON: a syntax error, an early end, data after the
// value, or bytes that are not UTF-8. Offset is the byte where, for reporting a line.
type JSONError struct {
	Offset int64
	Err    error
}

func (e *JSONError) Error() string { return e.Err.Error() }
func (e *JSONError) Unwrap() error { return e.Err }

// maxDepth is encoding/json's limit on nesting, so that a document it takes is taken here.
const maxDepth = 10000

// DecodeJSON parses one JSON document into the values expressions work with: objects as
// map[string]any, lists as []any, strings, booleans and nil, and numbers by how they are
// written (see Number), so that writing them again gives the same number. The decode stage,
// HTTP lookups and JSON lookup tables all read JSON through it.
//
// It is a parser of its own rather than encoding/json with UseNumber, which gave the same
// values at twice the cost (a Decoder, its buffer and a string per number, then a pass to
// convert them) on the hottest path of a pipeline; FuzzDecodeJSON checks the two agree.
// Like encoding/json it keeps the last of duplicate keys and turns invalid \u surrogate
// escapes into U+FFFD; unlike it, bytes that are not UTF-8 are an error.
func DecodeJSON(data []byte) (any, error) { return DecodeJSONReading(data, nil) }

// Raw is a field of a decoded body kept as written: checked as JSON but neither decoded nor
// encoded again, because no expression of the pipeline reads it (see DecodeJSONReading).
// Sinks write it as it came, escapes included, less the spaces between its tokens.
type Raw []byte

// String is the JSON as written, which is what fmt shows of a body holding it.
func (r Raw) String() string { return string(r) }

// MarshalJSON writes the field as it came, for bodies that go through encoding/json.
func (r Raw) MarshalJSON() ([]byte, error) { return r, nil }

// DecodeJSONReading is DecodeJSON for a body of which expressions read only some fields: a
// top-level field of an object for which unread says true is checked as DecodeJSON checks it
// (the same errors, at the same offsets) but kept as a Raw slice of data. Skipping what no
// one reads saves its allocations and, in sinks, its encoding.
func DecodeJSONReading(data []byte, unread func(field string) bool) (any, error) {
	return decode(decoder{data: data, unread: unread})
}

// Decoder is DecodeJSONReading for the bodies of one decode stage, at the fewest allocations
// a record: the body's strings and object keys are not copies but share the bytes of the body,
// which the record keeps as consumed for as long as its decoded body lives (Record.Value, never
// written in place: Raw fields already share it), and the top-level object is made at the size
// of the last one. A string with escapes is still built apart. It is safe for concurrent use.
type Decoder struct {
	unread func(field string) bool
	fields atomic.Int32 // the top-level fields of the last body: the next map's size
}

// NewDecoder reads bodies keeping as Raw the top-level fields for which unread says true (nil:
// none), their maps first made for fields fields (a schema's count; then the last body's).
func NewDecoder(unread func(field string) bool, fields int) *Decoder {
	dec := &Decoder{unread: unread}
	dec.fields.Store(int32(min(fields, maxSizeHint)))
	return dec
}

// Decode decodes data, which must stay unchanged as long as the value it returns is used: its
// strings share data's bytes.
func (dec *Decoder) Decode(data []byte) (any, error) {
	return decode(decoder{data: data, unread: dec.unread, shared: unsafe.String(unsafe.SliceData(data), len(data)), top: dec})
}

func decode(d decoder) (any, error) {
	if !utf8.Valid(d.data) {
		return nil, invalidUTF8(d.data)
	}
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	if d.space(); d.pos < len(d.data) {
		return nil, d.syntax("after top-level value")
	}
	return v, nil
}

func invalidUTF8(data []byte) error {
	off := 0
	for off < len(data) {
		r, n := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	return &JSONError{Offset: int64(off), Err: fmt.Errorf("%w at byte %d", ErrInvalidUTF8, off)}
}

type decoder struct {
	data   []byte
	pos    int
	depth  int
	unread func(field string) bool // top-level fields to keep as Raw; nil: none
	spaced bool                    // space was passed over (a Raw with space inside is compacted)

	// shared is data as a string, for a Decoder's strings to be its substrings; "" when the
	// caller may reuse data (a bufio.Scanner's line), and strings are copies.
	shared string
	top    *Decoder // the size of top-level objects; nil: none known
	// keys interns the object keys of a long document (a table, a list of objects), where
	// the same few names come back many times: one string each, not one per object.
	keys  map[string]string
	nkeys int
}

// internAfter is how many keys a document has before its keys are interned: a body of a few
// fields is not worth a map.
const internAfter = 32

// maxInterned bounds the interned keys of a document whose keys are all different.
const maxInterned = 1024

// syntax is an error at the current byte, in encoding/json's words.
func (d *decoder) syntax(context string) error {
	if d.pos >= len(d.data) {
		return d.end()
	}
	r, _ := utf8.DecodeRune(d.data[d.pos:])
	return &JSONError{Offset: int64(d.pos), Err: fmt.Errorf("invalid character %s %s", strconv.QuoteRune(r), context)}
}

func (d *decoder) end() error {
	return &JSONError{Offset: int64(len(d.data)), Err: errors.New("unexpected end of JSON input")}
}

func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
			d.spaced = true
		default:
			return
		}
	}
}

// next skips space and returns the byte there, or 0 at the end (never valid JSON there).
func (d *decoder) next() byte {
	if d.space(); d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *decoder) value() (any, error) {
	switch c := d.next(); {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		return d.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, d.syntax("looking for beginning of value")
}

func (d *decoder) literal(word string) error {
	for i := 1; i < len(word); i++ { // word[0] was seen by value
		d.pos++
		if d.pos >= len(d.data) {
			return d.end()
		}
		if d.data[d.pos] != word[i] {
			return d.syntax(fmt.Sprintf("in literal %s (expecting %q)", word, word[i]))
		}
	}
	d.pos++
	return nil
}

func (d *decoder) enter() error {
	if d.depth++; d.depth > maxDepth {
		return d.syntax("exceeded max depth")
	}
	d.pos++
	return nil
}

func (d *decoder) object() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	var m map[string]any
	if d.depth == 1 && d.top != nil {
		// Made at its final size rather than grown, which for more than 8 fields means
		// tables made and copied on the way there.
		m = make(map[string]any, d.top.fields.Load())
		defer d.top.sized(m)
	} else {
		m = map[string]any{}
	}
	if d.next() == '}' {
		d.pos++
		d.depth--
		return m, nil
	}
	for {
		if d.next() != '"' {
			return nil, d.syntax("looking for beginning of object key string")
		}
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		if d.next() != ':' {
			return nil, d.syntax("after object key")
		}
		d.pos++
		var v any
		if d.depth == 1 && d.unread != nil && d.unread(k) {
			v, err = d.raw()
		} else {
			v, err = d.value()
		}
		if err != nil {
			return nil, err
		}
		m[k] = v
		switch d.next() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return m, nil
		default:
			return nil, d.syntax("after object key:value pair")
		}
	}
}

func (d *decoder) array() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	a := []any{}
	if d.next() == ']' {
		d.pos++
		d.depth--
		return a, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		switch d.next() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return a, nil
		default:
			return nil, d.syntax("after array element")
		}
	}
}

// maxSizeHint bounds the size a top-level object is made at: one body of a huge object must
// not make the next ones, of a few fields, that large.
const maxSizeHint = 1024

// sized keeps the size of a top-level object for the next one.
func (dec *Decoder) sized(m map[string]any) {
	// Stored only when it changes: the decode workers share it, and a store to a shared line
	// per record would make them wait for each other's caches.
	if n := int32(min(len(m), maxSizeHint)); n != dec.fields.Load() {
		dec.fields.Store(n)
	}
}

// key reads an object key: like any string, but in a long document, where the same names come
// back, interned, when not shared.
func (d *decoder) key() (string, error) {
	if d.shared != "" {
		return d.str()
	}
	if d.nkeys++; d.nkeys <= internAfter {
		return d.str()
	}
	start := d.pos + 1
	if d.keys == nil {
		d.keys = map[string]string{}
	}
	if end := d.plainEnd(start); end >= 0 {
		if k, ok := d.keys[string(d.data[start:end])]; ok { // a lookup without a copy
			d.pos = end + 1
			return k, nil
		}
	}
	k, err := d.str()
	if err != nil {
		return "", err
	}
	if known, ok := d.keys[k]; ok { // a key with escapes, built and then dropped: only one is kept
		return known, nil
	}
	if len(d.keys) < maxInterned {
		d.keys[k] = k
	}
	return k, nil
}

// plainEnd is the offset of the quote closing the string at start when it holds neither
// escapes nor control bytes, else -1.
func (d *decoder) plainEnd(start int) int {
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			return i
		case c == '\\' || c < 0x20:
			return -1
		}
	}
	return -1
}

// text is data[i:j] as a string: a Decoder's shares data; otherwise a copy.
func (d *decoder) text(i, j int) string {
	if d.shared != "" {
		return d.shared[i:j]
	}
	return string(d.data[i:j])
}

// str reads a string; most have no escapes and are data's bytes as they are.
func (d *decoder) str() (string, error) {
	d.pos++
	start := d.pos
	for d.pos = plainRun(d.data, d.pos); d.pos < len(d.data); {
		switch c := d.data[d.pos]; {
		case c == '"':
			d.pos++
			return d.text(start, d.pos-1), nil
		case c == '\\':
			return d.escaped(append([]byte(nil), d.data[start:d.pos]...))
		case c < 0x20:
			return "", d.syntax("in string literal")
		}
		d.pos++
	}
	return "", d.end()
}

var escapes = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

func (d *decoder) escaped(buf []byte) (string, error) {
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(buf), nil
		case c < 0x20:
			return "", d.syntax("in string literal")
		case c != '\\':
			end := plainRun(d.data, d.pos+1)
			buf = append(buf, d.data[d.pos:end]...)
			d.pos = end
			continue
		}
		if d.pos++; d.pos >= len(d.data) {
			return "", d.end()
		}
		e := d.data[d.pos]
		if e != 'u' {
			if escapes[e] == 0 {
				return "", d.syntax("in string escape code")
			}
			buf = append(buf, escapes[e])
			d.pos++
			continue
		}
		d.pos++
		r, err := d.hex4()
		if err != nil {
			return "", err
		}
		if utf16.IsSurrogate(r) {
			// A pair makes one rune; anything else is U+FFFD, and what follows is read as itself.
			r2, ok, err := d.lowSurrogate(r)
			if err != nil {
				return "", err
			}
			if r = utf8.RuneError; ok {
				r = r2
			}
		}
		buf = utf8.AppendRune(buf, r)
	}
	return "", d.end()
}

// lowSurrogate reads the \uXXXX after the high surrogate hi when it completes a pair.
func (d *decoder) lowSurrogate(hi rune) (rune, bool, error) {
	if d.pos+1 >= len(d.data) || d.data[d.pos] != '\\' || d.data[d.pos+1] != 'u' {
		return 0, false, nil
	}
	save := d.pos
	d.pos += 2
	lo, err := d.hex4()
	if err != nil {
		return 0, false, err
	}
	if r := utf16.DecodeRune(hi, lo); r != utf8.RuneError {
		return r, true, nil
	}
	d.pos = save
	return 0, false, nil
}

func (d *decoder) hex4() (rune, error) {
	var r rune
	for range 4 {
		if d.pos >= len(d.data) {
			return 0, d.end()
		}
		c := d.data[d.pos]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, d.syntax("in \\u hexadecimal character escape")
		}
		r = r*16 + rune(c)
		d.pos++
	}
	return r, nil
}

// digits skips a run of digits and says how many there were.
func (d *decoder) digits() int {
	start := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	return d.pos - start
}

func (d *decoder) number() (any, error) {
	lit, integer, err := d.numeral()
	if err != nil {
		return nil, err
	}
	if integer && len(lit) <= 18 { // at most 18 digits: below 10^18, within int64
		var n int64
		for _, c := range lit {
			if c != '-' {
				n = n*10 + int64(c-'0')
			}
		}
		if lit[0] == '-' {
			n = -n
		}
		return intOrInt64(n), nil
	}
	if !integer {
		// Parsed from data's bytes without a copy (ParseFloat keeps its argument only in an
		// error, which is dropped); a literal kept as written is taken by text below.
		if f, ok := parseFloat(unsafe.String(unsafe.SliceData(lit), len(lit))); ok {
			return f, nil
		}
	}
	return Number(json.Number(d.text(d.pos-len(lit), d.pos))), nil
}

// numeral reads a number literal, saying whether it is written as an integer.
func (d *decoder) numeral() (lit []byte, integer bool, err error) {
	start := d.pos
	if d.data[d.pos] == '-' {
		if d.pos++; d.pos >= len(d.data) {
			return nil, false, d.end()
		}
	}
	switch c := d.data[d.pos]; {
	case c == '0':
		d.pos++
	case c >= '1' && c <= '9':
		d.digits()
	default:
		return nil, false, d.syntax("in numeric literal")
	}
	integer = true
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		integer = false
		if d.pos++; d.digits() == 0 {
			return nil, false, d.syntax("after decimal point in numeric literal")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		integer = false
		if d.pos++; d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if d.digits() == 0 {
			return nil, false, d.syntax("in exponent of numeric literal")
		}
	}
	return d.data[start:d.pos], integer, nil
}
