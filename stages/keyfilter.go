package stages

import (
	"hash/maphash"
	"math/bits"
)

// keyFilter tells of a key whether a store may hold it: a blocked Bloom filter over the keys
// written to the store, so that a key seen for the first time (most of a dedupe's) costs no
// lookup in the store. It never says no of a key it was given; of other keys it says "may"
// for about 2–3% of them, which then cost the lookup. Keys that leave the store stay in it:
// it is built again from the store once it holds its capacity (keyFilterRoom).
type keyFilter struct {
	seed     maphash.Seed
	blocks   [][8]uint64 // a key's bits all fall in one block of 512: one cache line
	keys     int
	capacity int
}

// A key sets 5 bits of its block; the filter has 8 bits a key of its capacity.
const (
	keyFilterBits   = 8
	keyFilterProbes = 5
)

func newKeyFilter(capacity int) *keyFilter {
	return &keyFilter{seed: maphash.MakeSeed(), blocks: make([][8]uint64, keyFilterBytes(capacity)/64), capacity: capacity}
}

// probe is key's block and the hash its bits come from.
func (f *keyFilter) probe(key []byte) (*[8]uint64, uint64) {
	h := maphash.Bytes(f.seed, key)
	hi, _ := bits.Mul64(h, uint64(len(f.blocks)))
	return &f.blocks[hi], h * 0x9E3779B97F4A7C15 // the block from h, the bits from a remix of it
}

func (f *keyFilter) add(key []byte) {
	b, g := f.probe(key)
	for i := range keyFilterProbes {
		bit := g >> (9 * i) & 511
		b[bit>>6] |= 1 << (bit & 63)
	}
	f.keys++
}

// mayHold reports whether key may be in the store: false only for a key never added.
func (f *keyFilter) mayHold(key []byte) bool {
	b, g := f.probe(key)
	for i := range keyFilterProbes {
		bit := g >> (9 * i) & 511
		if b[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

// full reports a filter given as many keys as it was made for: past that it says "may" more
// and more often.
func (f *keyFilter) full() bool { return f.keys >= f.capacity }

// keyFilterRoom is the capacity of a filter of about n keys: room for half as many more (at
// least 64Ki), so that built again each time it fills, it costs a scan of the keys for every
// half as many written, and holds keys that left meanwhile only until then.
func keyFilterRoom(n int64) int { return int(n) + max(int(n)/2, 64<<10) }

// keyFilterBytes is the memory of a filter of capacity keys.
func keyFilterBytes(capacity int) int64 { return int64(max(capacity*keyFilterBits/512, 1)) * 64 }
