package record

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
)

// raw reads one value as a Raw: as written, but without the space between its tokens, as
// any other field is written (most bodies have none, and cost no copy).
func (d *decoder) raw() (Raw, error) {
	d.space()
	start := d.pos
	d.spaced = false
	if err := d.skip(); err != nil {
		return nil, err
	}
	v := d.data[start:d.pos]
	if !d.spaced {
		return Raw(v), nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return nil, err // skip has checked it: cannot happen
	}
	return Raw(b.Bytes()), nil
}

// skip passes over one value, checking it exactly as value does (the same errors at the same
// offsets) without building it: a Raw field costs a scan, not its allocations.
func (d *decoder) skip() error {
	switch c := d.next(); {
	case c == '{':
		return d.skipObject()
	case c == '[':
		return d.skipArray()
	case c == '"':
		return d.skipString()
	case c == '-' || (c >= '0' && c <= '9'):
		_, _, err := d.numeral()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	}
	return d.syntax("looking for beginning of value")
}

func (d *decoder) skipObject() error {
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
		if err := d.skipString(); err != nil {
			return err
		}
		if d.next() != ':' {
			return d.syntax("after object key")
		}
		d.pos++
		if err := d.skip(); err != nil {
			return err
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

func (d *decoder) skipArray() error {
	if err := d.enter(); err != nil {
		return err
	}
	if d.next() == ']' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		if err := d.skip(); err != nil {
			return err
		}
		switch d.next() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return nil
		default:
			return d.syntax("after array element")
		}
	}
}

// skipString checks a string as str and escaped do: no control bytes, known escapes, four hex
// digits after \u (what an unpaired surrogate decodes to does not matter here).
func (d *decoder) skipString() error {
	d.pos++
	for d.pos < len(d.data) {
		if d.pos = plainRun(d.data, d.pos); d.pos >= len(d.data) {
			break
		}
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return nil
		case c < 0x20:
			return d.syntax("in string literal")
		case c != '\\':
			d.pos++
			continue
		}
		if d.pos++; d.pos >= len(d.data) {
			return d.end()
		}
		e := d.data[d.pos]
		d.pos++
		if e == 'u' {
			if _, err := d.hex4(); err != nil {
				return err
			}
		} else if escapes[e] == 0 {
			d.pos--
			return d.syntax("in string escape code")
		}
	}
	return d.end()
}

// plainRun is the offset of the first byte from i on that a string's scan must look at — a
// quote, a backslash or a control byte — or len(data). It tests eight bytes at a time, as most
// of a string (a long unread note) is none of these: a quote or a backslash is a zero byte of
// x XOR its repetition, and (v - 0x01…01) &^ v & 0x80…80 is nonzero exactly when a byte of v
// is zero; (x - 0x20…20) &^ x & 0x80…80 likewise when a byte of x is below 0x20.
func plainRun(data []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(data); i += 8 {
		x := binary.LittleEndian.Uint64(data[i:])
		q, b := x^(ones*'"'), x^(ones*'\\')
		if ((q-ones)&^q|(b-ones)&^b|(x-ones*0x20)&^x)&highs != 0 {
			break // one of the eight: found below
		}
	}
	for ; i < len(data); i++ {
		if c := data[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return i
}
