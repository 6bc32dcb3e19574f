package stages

import (
	"hash/maphash"
	"math/bits"
)

// keyFilter tells of a key whether a store may hold it, so that a key seen for the first time
// (most of a dedupe's) costs no lookup in the store. It never says no of a key it was given;
// of other keys it says "may" for a few percent of them, which then cost the lookup. It is
// blocked Bloom filters, each with room for twice the keys of the one before: a key goes into
// the newest, a question asks them all, and it grows without reading the store again. Keys
// that leave the store stay in it: a filter much larger than the store's keys is built anew
// from them (dedupe.file).
type keyFilter struct {
	seed  maphash.Seed
	parts []keyFilterPart // the newest last
}

type keyFilterPart struct {
	blocks         [][8]uint64 // a key's bits all fall in one block of 512: one cache line
	keys, capacity int
}

// A key sets 5 bits of a block of 512; a part has 8 bits a key of its capacity, and says "may"
// of 2–3% of other keys when full.
const (
	keyFilterBits   = 8
	keyFilterProbes = 5
	keyFilterFirst  = 64 << 10 // a dedupe's first part's capacity
)

// newKeyFilter is an empty filter whose first part has room for first keys.
func newKeyFilter(first int) *keyFilter {
	return &keyFilter{seed: maphash.MakeSeed(), parts: []keyFilterPart{newKeyFilterPart(first)}}
}

func newKeyFilterPart(capacity int) keyFilterPart {
	return keyFilterPart{blocks: make([][8]uint64, keyFilterPartBytes(capacity)/64), capacity: capacity}
}

// keyFilterPartBytes is the memory of a part with room for capacity keys.
func keyFilterPartBytes(capacity int) int64 { return int64(max(capacity*keyFilterBits/512, 1)) * 64 }

// bits is key's block in p and the hash its bits come from: the block from h, the bits from
// a remix of it.
func (p *keyFilterPart) bits(h uint64) (*[8]uint64, uint64) {
	i, _ := bits.Mul64(h, uint64(len(p.blocks)))
	return &p.blocks[i], h * 0x9E3779B97F4A7C15
}

func (p *keyFilterPart) add(h uint64) {
	b, g := p.bits(h)
	for i := range keyFilterProbes {
		bit := g >> (9 * i) & 511
		b[bit>>6] |= 1 << (bit & 63)
	}
	p.keys++
}

func (p *keyFilterPart) has(h uint64) bool {
	b, g := p.bits(h)
	for i := range keyFilterProbes {
		bit := g >> (9 * i) & 511
		if b[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

// add puts key into the newest part; call grow first when the filter is full.
func (f *keyFilter) add(key []byte) { f.parts[len(f.parts)-1].add(maphash.Bytes(f.seed, key)) }

// mayHold reports whether key may be in the store: false only for a key never added.
func (f *keyFilter) mayHold(key []byte) bool {
	h := maphash.Bytes(f.seed, key)
	for i := len(f.parts) - 1; i >= 0; i-- {
		if f.parts[i].has(h) {
			return true
		}
	}
	return false
}

// full reports a newest part given as many keys as it has room for.
func (f *keyFilter) full() bool {
	last := &f.parts[len(f.parts)-1]
	return last.keys >= last.capacity
}

// next is the bytes the part grow adds takes.
func (f *keyFilter) next() int64 { return keyFilterPartBytes(2 * f.parts[len(f.parts)-1].capacity) }

// grow adds a part with room for twice the keys of the newest.
func (f *keyFilter) grow() {
	f.parts = append(f.parts, newKeyFilterPart(2*f.parts[len(f.parts)-1].capacity))
}

// capacity is the keys the filter has room for, in all its parts.
func (f *keyFilter) capacity() int {
	n := 0
	for _, p := range f.parts {
		n += p.capacity
	}
	return n
}

// bytes is the filter's memory.
func (f *keyFilter) bytes() int64 {
	var n int64
	for _, p := range f.parts {
		n += int64(len(p.blocks)) * 64
	}
	return n
}
