package stages

import (
	"encoding/binary"
	"math"
)

// windowKind is how an aggregate cuts time into windows.
type windowKind uint8

const (
	tumbling windowKind = iota
	hopping
	session
)

// windowing is an aggregate's windows, in milliseconds. Fixed windows are aligned on the Unix
// epoch, so that every instance and every restart cuts time the same way.
type windowing struct {
	kind          windowKind
	size, advance int64 // tumbling: advance = size
	gap           int64 // session
	grace         int64
}

// starts lists the starts of the fixed windows t falls in, latest first: tumbling one,
// hopping those with start ≤ t < start+size, one every advance.
func (w windowing) starts(t int64) []int64 {
	last := floorDiv(t, w.advance) * w.advance
	var out []int64
	for s := last; s > t-w.size; s -= w.advance {
		out = append(out, s)
	}
	return out
}

// floorDiv rounds towards minus infinity, so that times before 1970 fall in their window too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// closed: a window ending at end has closed once stream time reached end + grace. Until the
// partition has a stream time (noTime) nothing has.
func (w windowing) closed(end, streamTime int64) bool {
	return streamTime != noTime && end+w.grace <= streamTime
}

// overlaps reports whether a session [start, end) takes a record at t, whose own session is
// [t, t+gap): the two touch within gap of each other.
func (w windowing) overlaps(start, end, t int64) bool {
	return start < t+w.gap && t < end
}

// noTime is the stream time of a partition that has seen no record.
const noTime = math.MinInt64

// The store's keys:
//
//	'w' len(key) key start  → the window's state (winState.encode); on the changelog
//	'e' end start key       → nothing: the windows in the order they close, rebuilt by Restore
//	'm'                     → the partition's stream time; on the changelog when windows close
//	'c'                     → the end below which every 'e' entry is gone (closed): where the
//	                          next close scans from, past the deletions of the windows closed
//	                          before; local (Restore leaves it out: a restored store scans all)
//
// A key's windows are together ('w' then the key), so that a session finds its key's
// sessions in one scan; times are big-endian with the sign bit flipped, so that they sort.
const (
	windowPrefix = 'w'
	endPrefix    = 'e'
	metaStream   = 'm'
	metaClosed   = 'c'
)

var (
	streamKey = []byte{metaStream}
	closedKey = []byte{metaClosed}
)

func appendTime(b []byte, ms int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(ms)^(1<<63))
}

func readTime(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// keyWindows is the prefix of a key's windows.
func keyWindows(key []byte) []byte {
	return append(binary.AppendUvarint([]byte{windowPrefix}, uint64(len(key))), key...)
}

func windowKey(key []byte, start int64) []byte { return appendTime(keyWindows(key), start) }

// parseWindowKey reads a window key's group key and start.
func parseWindowKey(k []byte) (key []byte, start int64, ok bool) {
	if len(k) < 1 || k[0] != windowPrefix {
		return nil, 0, false
	}
	n, m := binary.Uvarint(k[1:])
	if m <= 0 || uint64(len(k)) != 1+uint64(m)+n+8 {
		return nil, 0, false
	}
	key = k[1+m : 1+m+int(n)]
	return key, readTime(k[1+m+int(n):]), true
}

func endKey(end, start int64, key []byte) []byte {
	return append(appendTime(appendTime([]byte{endPrefix}, end), start), key...)
}

// parseEndKey reads an index key: the window's end, start and group key.
func parseEndKey(k []byte) (end, start int64, key []byte, ok bool) {
	if len(k) < 17 || k[0] != endPrefix {
		return 0, 0, nil, false
	}
	return readTime(k[1:]), readTime(k[9:]), k[17:], true
}
