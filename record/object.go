package record

import (
	"errors"
	"math"
	"unicode/utf8"
	"unsafe"
)

// Object is a JSON object body read lazily: the body's bytes and an index of its top-level
// fields (each one's name and where its value lies in the body), a value decoded from its
// bytes each time it is read, and the values a stage sets kept beside the index. A decode
// stage makes one (Decoder.DecodeLazy) instead of a map[string]any when every consumer of
// its bodies reads them only through a field's name (expressions' msg.field), sets and
// drops fields (a map stage) and encodes them as JSON (sinks): then the fields no one
// reads are never decoded, and nothing is hashed.
//
// It holds what DecodeJSONReading would have made of the body, with the changes made since:
// Map makes exactly that map, and AppendJSON writes the bytes that map's encoding would.
// Unchanged fields are written from the body's bytes where those are what encoding their
// value would write (a string without escapes, an integer), and re-encoded where not.
//
// An Object belongs to its record, as a map would. Get, Len, Name, Token, Map and the
// encoding only read it; Set and Delete change it. It shares the body's bytes, which must not
// change while it is used (Record.Value, never written in place).
type Object struct {
	body   string // the body as consumed
	fields []slot // in the body's order, the last of duplicate names only; then added ones
	vals   []any  // the values set, by field
	unread func(name string) bool
	// Room for the fields and values of a small body, made with it (288 bytes in all): the
	// orders example's five fields and the one its map stage adds, its three values set.
	inFields [7]slot
	inVals   [3]any
}

// slot is a top-level field: its value's bytes body[start:end], or vals[end] when start < 0.
type slot struct {
	name       string
	start, end int32
}

// maxLazyFields bounds the fields of a lazy Object, whose fields are found by a scan: a wider
// body is decoded into a map.
const maxLazyFields = 32

// DecodeLazy is Decode for a body whose top-level object may stay lazy: an *Object when data
// is an object of at most maxLazyFields fields, else what Decode returns. Its errors are
// Decode's, at the same offsets: the index checks every value as Decode does.
func (dec *Decoder) DecodeLazy(data []byte) (any, error) {
	d := dec.decoder(data)
	if !utf8.Valid(data) {
		return nil, invalidUTF8(data)
	}
	if d.next() != '{' || len(data) > math.MaxInt32 || dec.fields.Load() > maxLazyFields {
		return decode(d)
	}
	o := &Object{body: d.shared, unread: dec.unread}
	o.fields = o.inFields[:0]
	if n := int(dec.fields.Load()) + 1; n > len(o.inFields) {
		o.fields = make([]slot, 0, n)
	}
	if err := d.index(o); err != nil {
		if err == errWide {
			return decode(dec.decoder(data))
		}
		return nil, err
	}
	if d.space(); d.pos < len(d.data) {
		return nil, d.syntax("after top-level value")
	}
	if n := int32(len(o.fields)); n != dec.fields.Load() {
		dec.fields.Store(n)
	}
	return o, nil
}

func (dec *Decoder) decoder(data []byte) decoder {
	return decoder{data: data, unread: dec.unread, shared: unsafe.String(unsafe.SliceData(data), len(data)), top: dec}
}

// errWide stops an index of more than maxLazyFields fields.
var errWide = errors.New("too many fields for a lazy object")

// index reads the object at d.pos into o, checking each value as value would.
func (d *decoder) index(o *Object) error {
	if err := d.enter(); err != nil {
		return err
	}
	if d.next() == '}' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		if d.next() != '"' {
			return d.syntax("looking for beginning of object key string")
		}
		k, err := d.str()
		if err != nil {
			return err
		}
		if d.next() != ':' {
			return d.syntax("after object key")
		}
		d.pos++
		d.space()
		start := d.pos
		if err := d.skip(); err != nil {
			return err
		}
		if i := o.find(k); i >= 0 { // the last of duplicates counts, as in a map
			o.fields = append(o.fields[:i], o.fields[i+1:]...)
		}
		o.fields = append(o.fields, slot{name: k, start: int32(start), end: int32(d.pos)})
		if len(o.fields) > maxLazyFields {
			return errWide
		}
		switch d.next() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return nil
		default:
			return d.syntax("after object key:value pair")
		}
	}
}

func (o *Object) find(name string) int {
	for i := range o.fields {
		if o.fields[i].name == name {
			return i
		}
	}
	return -1
}

// Get is the value of field name, as DecodeJSON decodes it or as last set; false when the
// object has no such field.
func (o *Object) Get(name string) (any, bool) {
	i := o.find(name)
	if i < 0 {
		return nil, false
	}
	return o.value(i), true
}

// Index is the position of field name, for At, Token and SetAt; -1 when there is none. It
// holds until a field is deleted.
func (o *Object) Index(name string) int { return o.find(name) }

// At is the value of field i (0 ≤ i < Len), as Get has it.
func (o *Object) At(i int) any { return o.value(i) }

func (o *Object) value(i int) any {
	f := o.fields[i]
	if f.start < 0 {
		return o.vals[f.end]
	}
	d := decoder{data: o.bytes(), shared: o.body, pos: int(f.start)}
	v, err := d.value()
	if err != nil {
		return nil // the index has checked it: cannot happen
	}
	return v
}

func (o *Object) bytes() []byte { return unsafe.Slice(unsafe.StringData(o.body), len(o.body)) }

// Token is how field i's value is written in the body, by its first byte: '"', 't', 'f',
// 'n', '{', '[', or '0' for any number; 0 when it was set since.
func (o *Object) Token(i int) byte {
	if o.fields[i].start < 0 {
		return 0
	}
	switch c := o.body[o.fields[i].start]; c {
	case '"', 't', 'f', 'n', '{', '[':
		return c
	}
	return '0'
}

// Set sets field name to v, which the object then holds as it is (no copy).
func (o *Object) Set(name string, v any) {
	if i := o.find(name); i >= 0 {
		o.SetAt(i, v)
		return
	}
	o.fields = append(o.fields, slot{name: name, start: -1, end: o.keep(v)})
}

// SetAt sets field i (0 ≤ i < Len) to v, as Set does.
func (o *Object) SetAt(i int, v any) {
	if f := &o.fields[i]; f.start < 0 {
		o.vals[f.end] = v
	} else {
		f.start, f.end = -1, o.keep(v)
	}
}

// keep adds v to the values set, saying where.
func (o *Object) keep(v any) int32 {
	if o.vals == nil {
		o.vals = o.inVals[:0]
	}
	o.vals = append(o.vals, v)
	return int32(len(o.vals) - 1)
}

// Delete removes field name, if there is one.
func (o *Object) Delete(name string) {
	if i := o.find(name); i >= 0 {
		if f := o.fields[i]; f.start < 0 {
			o.vals[f.end] = nil
		}
		o.fields = append(o.fields[:i], o.fields[i+1:]...)
	}
}

// Len is the number of fields.
func (o *Object) Len() int { return len(o.fields) }

// Name is the name of field i (0 ≤ i < Len), in no particular order.
func (o *Object) Name(i int) string { return o.fields[i].name }

// Map is the object as DecodeJSONReading makes it, with the changes made since: the fields
// no expression reads as Raw, the others decoded. The map is the caller's.
func (o *Object) Map() map[string]any {
	m := make(map[string]any, len(o.fields))
	for i, f := range o.fields {
		if f.start >= 0 && o.raw(f.name) {
			m[f.name] = Raw(appendCompact(nil, o.body[f.start:f.end]))
			continue
		}
		m[f.name] = o.value(i)
	}
	return m
}

func (o *Object) raw(name string) bool { return o.unread != nil && o.unread(name) }

// Copy is a copy whose fields change apart from o's: the values set are copied deeply, the
// body shared.
func (o *Object) Copy() *Object {
	c := &Object{body: o.body, unread: o.unread}
	c.fields = append(c.inFields[:0], o.fields...)
	if o.vals != nil {
		c.vals = c.inVals[:0]
		for _, v := range o.vals {
			c.vals = append(c.vals, DeepCopy(v))
		}
	}
	return c
}

// Plain is v with a lazy Object made a map[string]any (Map), for what reads a body in other
// ways than an Object's methods; any other value as it is.
func Plain(v any) any {
	if o, ok := v.(*Object); ok {
		return o.Map()
	}
	return v
}
