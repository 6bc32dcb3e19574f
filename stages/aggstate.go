package stages

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// aggFunc is an aggregation function of the aggregate stage.
type aggFunc uint8

const (
	fnCount aggFunc = iota
	fnSum
	fnMin
	fnMax
	fnAvg
	fnFirst
	fnLast
	fnCountDistinct
)

var aggFuncNames = []string{"count", "sum", "min", "max", "avg", "first", "last", "count_distinct"}

func (f aggFunc) String() string { return aggFuncNames[f] }

// aggSpec is one output field of an aggregate: its function and what it reads.
type aggSpec struct {
	name  string
	fn    aggFunc
	label string // the call as written, for errors: "sum(msg.amount)"
}

// winState is a window's aggregates: what its records folded into it, in a form that merges
// (two sessions joined by a record between them merge as the records would have folded).
type winState struct {
	start, end int64 // unix ms, end exclusive; start is the store key's, not encoded
	maxTime    int64 // the latest event time folded: a restore's lower bound of stream time
	count      int64
	key        any // the group key as computed, for the output
	aggs       []aggState
}

// aggState is one function's state; which fields matter depends on the function.
type aggState struct {
	has     bool     // a value other than null was folded
	isFloat bool     // sum: the sum is a float (a float was summed)
	i       int64    // sum of ints
	f       float64  // sum of floats; avg: the sum
	n       int64    // avg: the values summed
	ms      int64    // first, last: the event time of v
	v       any      // min, max, first, last
	set     []uint64 // count_distinct: the values' hashes, sorted, until there are distinctExact
	hll     []byte   // count_distinct past distinctExact: a HyperLogLog sketch
}

// distinctExact bounds the hashes a count_distinct keeps per window (4 KiB): past it the
// count is a HyperLogLog estimate in 4 KiB (2^hllBits registers, about 1.6% standard
// error), so that a window's state, written to the changelog at each record, stays small.
const (
	distinctExact = 512
	hllBits       = 12
)

// fold is the state of one record alone, in the window [start, end): what merge adds to a
// window. vals holds each function's argument (nil for count).
func fold(specs []aggSpec, start, end, t int64, key any, vals []any) (*winState, error) {
	ws := &winState{start: start, end: end, maxTime: t, count: 1, key: key, aggs: make([]aggState, len(specs))}
	for i, sp := range specs {
		v := vals[i]
		if v == nil || sp.fn == fnCount {
			continue // null is skipped by every function but count()
		}
		a := &ws.aggs[i]
		switch sp.fn {
		case fnSum, fnAvg:
			n, err := number(v)
			if err != nil {
				verb := map[aggFunc]string{fnSum: "summed", fnAvg: "averaged"}[sp.fn]
				return nil, aggErr(sp, "%s of %s: %s cannot be %s", sp.fn, argText(sp.label), err, verb)
			}
			a.has = true
			switch x := n.(type) {
			case int64:
				a.i, a.f = x, float64(x)
			case float64:
				a.f, a.isFloat = x, true
			}
			a.n = 1
		case fnMin, fnMax:
			if _, ok := orderKind(v); !ok {
				return nil, aggErr(sp, "%s of %s: %s has no order (numbers, strings and times do)", sp.fn, argText(sp.label), describe(v))
			}
			a.has, a.v = true, v
		case fnFirst, fnLast:
			a.has, a.v, a.ms = true, v, t
		case fnCountDistinct:
			h, err := valueHash(v)
			if err != nil {
				return nil, aggErr(sp, "%s of %s: %w", sp.fn, argText(sp.label), err)
			}
			a.has, a.set = true, []uint64{h}
		}
	}
	return ws, nil
}

// aggErr is a record's value that a function cannot take, naming the aggregate.
func aggErr(sp aggSpec, format string, args ...any) error {
	return &FieldError{Field: "aggregates " + sp.name, Err: fmt.Errorf(format, args...)}
}

// merge adds b to a (b came later), leaving b as it was.
func merge(specs []aggSpec, a, b *winState) error {
	a.start, a.end = min(a.start, b.start), max(a.end, b.end)
	a.maxTime, a.count = max(a.maxTime, b.maxTime), a.count+b.count
	if a.key == nil {
		a.key = b.key
	}
	for i, sp := range specs {
		x, y := &a.aggs[i], &b.aggs[i]
		if !y.has {
			continue
		}
		if !x.has && sp.fn != fnCountDistinct {
			*x = *y
			continue
		}
		switch sp.fn {
		case fnSum:
			if x.isFloat || y.isFloat {
				x.f, x.isFloat = x.f+y.f, true
				if math.IsInf(x.f, 0) || math.IsNaN(x.f) {
					return aggErr(sp, "%s: the sum is beyond a float's range", sp.label)
				}
				continue
			}
			s := x.i + y.i
			if (y.i > 0 && s < x.i) || (y.i < 0 && s > x.i) {
				return aggErr(sp, "%s: the sum overflows an int (beyond ±9.2e18)", sp.label)
			}
			x.i, x.f = s, x.f+y.f
		case fnAvg:
			x.f, x.n = x.f+y.f, x.n+y.n
		case fnMin, fnMax:
			c, err := compareValues(y.v, x.v)
			if err != nil {
				return aggErr(sp, "%s: %w", sp.label, err)
			}
			if (sp.fn == fnMin && c < 0) || (sp.fn == fnMax && c > 0) {
				x.v = y.v
			}
		case fnFirst:
			if y.ms < x.ms { // on a tie the earlier record stays first
				x.v, x.ms = y.v, y.ms
			}
		case fnLast:
			if y.ms >= x.ms { // on a tie the later record is last
				x.v, x.ms = y.v, y.ms
			}
		case fnCountDistinct:
			x.has = true
			mergeDistinct(x, y)
		}
	}
	return nil
}

// mergeDistinct adds y's values to x's, as a sketch once there are too many to keep.
func mergeDistinct(x, y *aggState) {
	if x.hll == nil && y.hll == nil {
		set := slices.Clone(x.set)
		for _, h := range y.set {
			if i, found := slices.BinarySearch(set, h); !found {
				set = slices.Insert(set, i, h)
			}
		}
		if len(set) <= distinctExact {
			x.set = set
			return
		}
		x.set = set // turned into a sketch below
	}
	sk := make([]byte, 1<<hllBits)
	copy(sk, x.hll)
	for _, h := range x.set {
		hllAdd(sk, h)
	}
	for _, h := range y.set {
		hllAdd(sk, h)
	}
	for j, r := range y.hll {
		sk[j] = max(sk[j], r)
	}
	x.set, x.hll = nil, sk
}

func hllAdd(sk []byte, h uint64) {
	j := h >> (64 - hllBits)
	w := h<<hllBits | 1<<(hllBits-1) // a guard bit bounds the rank
	sk[j] = max(sk[j], byte(bits.LeadingZeros64(w)+1))
}

// hllCount is the HyperLogLog estimate, with the small-range correction (linear counting).
func hllCount(sk []byte) int64 {
	m := float64(len(sk))
	sum, zeros := 0.0, 0
	for _, r := range sk {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return int64(math.Round(e))
}

// result is what a function's state gives in the output.
func (a *aggState) result(sp aggSpec, count int64) any {
	switch sp.fn {
	case fnCount:
		return int(count)
	case fnSum:
		if a.isFloat {
			return a.f
		}
		return int(a.i)
	case fnAvg:
		if a.n == 0 {
			return nil
		}
		return a.f / float64(a.n)
	case fnCountDistinct:
		if a.hll != nil {
			return int(hllCount(a.hll))
		}
		return len(a.set)
	}
	return a.v
}

// number is a value summed: an int64 or a float64.
func number(v any) (any, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), nil
		}
		return float64(x), nil
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case json.Number:
		if f, ok := record.Number(x).(float64); ok {
			return f, nil
		}
		return nil, fmt.Errorf("%s, a number beyond an int's or a float's range,", x)
	}
	return nil, errors.New(describe(v))
}

// orderKind sorts the values min and max compare: 0 numbers, 1 strings, 2 times.
func orderKind(v any) (int, bool) {
	switch v.(type) {
	case int, int64, int32, uint64, float64, float32:
		return 0, true
	case string:
		return 1, true
	case time.Time:
		return 2, true
	}
	return 0, false
}

// compareValues orders two values of one kind: numbers by value, strings by bytes, times.
func compareValues(x, y any) (int, error) {
	kx, _ := orderKind(x)
	ky, _ := orderKind(y)
	if kx != ky {
		return 0, fmt.Errorf("cannot compare %s with %s", describe(x), describe(y))
	}
	switch kx {
	case 1:
		return strings.Compare(x.(string), y.(string)), nil
	case 2:
		return x.(time.Time).Compare(y.(time.Time)), nil
	}
	nx, _ := number(x)
	ny, _ := number(y)
	if ix, ok := nx.(int64); ok {
		if iy, ok := ny.(int64); ok {
			switch {
			case ix < iy:
				return -1, nil
			case ix > iy:
				return 1, nil
			}
			return 0, nil
		}
	}
	fx, fy := toF(nx), toF(ny)
	switch {
	case fx < fy:
		return -1, nil
	case fx > fy:
		return 1, nil
	}
	return 0, nil
}

func toF(n any) float64 {
	if i, ok := n.(int64); ok {
		return float64(i)
	}
	return n.(float64)
}

// describe names a value's kind in a message: "a string".
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case []byte:
		return "bytes"
	case time.Time:
		return "a time"
	}
	if _, ok := orderKind(v); ok {
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}

// argText is the argument of a call as written: "msg.amount" of "sum(msg.amount)".
func argText(call string) string {
	if i, j := strings.IndexByte(call, '('), strings.LastIndexByte(call, ')'); i >= 0 && j > i {
		return strings.TrimSpace(call[i+1 : j])
	}
	return call
}

// valueHash is a value's hash for count_distinct: of its typed encoding, so that 1 and "1"
// differ, and the same across processes (the hashes are kept in the store).
func valueHash(v any) (uint64, error) {
	b, err := appendValue(nil, v)
	if err != nil {
		return 0, err
	}
	h := fnv.New64a()
	h.Write(b)
	return mix64(h.Sum64()), nil
}

// mix64 is splitmix64's finalizer: FNV's high bits, which pick a HyperLogLog register, are
// not spread enough alone.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Typed values in the store keep their Go type across a restore (a float 3.0 stays a float;
// JSON would bring it back an int).
const (
	tagNull byte = iota
	tagFalse
	tagTrue
	tagInt
	tagFloat
	tagString
	tagTime
	tagBytes
	tagNumber // json.Number
	tagJSON   // objects and lists
)

func appendValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, tagNull), nil
	case bool:
		if x {
			return append(dst, tagTrue), nil
		}
		return append(dst, tagFalse), nil
	case int:
		return binary.AppendVarint(append(dst, tagInt), int64(x)), nil
	case int64:
		return binary.AppendVarint(append(dst, tagInt), x), nil
	case int32:
		return binary.AppendVarint(append(dst, tagInt), int64(x)), nil
	case uint64:
		if x <= math.MaxInt64 {
			return binary.AppendVarint(append(dst, tagInt), int64(x)), nil
		}
		return appendBytes(append(dst, tagNumber), fmt.Append(nil, x)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(dst, tagFloat), math.Float64bits(x)), nil
	case float32:
		return binary.BigEndian.AppendUint64(append(dst, tagFloat), math.Float64bits(float64(x))), nil
	case string:
		return appendBytes(append(dst, tagString), []byte(x)), nil
	case []byte:
		return appendBytes(append(dst, tagBytes), x), nil
	case time.Time:
		return binary.AppendUvarint(binary.AppendVarint(append(dst, tagTime), x.Unix()), uint64(x.Nanosecond())), nil
	case json.Number:
		return appendBytes(append(dst, tagNumber), []byte(x)), nil
	}
	b, err := record.AppendJSON(nil, v)
	if err != nil {
		return nil, fmt.Errorf("%s cannot be kept: %w", describe(v), err)
	}
	return appendBytes(append(dst, tagJSON), b), nil
}

func appendBytes(dst, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

// errState is a store value this version cannot read: the store is not the stage's, or
// corrupt.
var errState = errors.New("aggregate: a window's state in the store is not readable")

// reader reads what appendValue and encode wrote.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errState
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if r.err != nil || n <= 0 {
		r.err = errState
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if r.err != nil || n <= 0 {
		r.err = errState
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errState
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u64() uint64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *reader) value() any {
	switch r.byte() {
	case tagNull:
		return nil
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagInt:
		i := r.varint()
		if int64(int(i)) == i {
			return int(i)
		}
		return i
	case tagFloat:
		return math.Float64frombits(r.u64())
	case tagString:
		return string(r.bytes(r.uvarint()))
	case tagBytes:
		return slices.Clone(r.bytes(r.uvarint()))
	case tagTime:
		s := r.varint()
		return time.Unix(s, int64(r.uvarint())).UTC()
	case tagNumber:
		return json.Number(r.bytes(r.uvarint()))
	case tagJSON:
		v, err := record.DecodeJSON(r.bytes(r.uvarint()))
		if err != nil && r.err == nil {
			r.err = errState
		}
		return v
	}
	r.err = errState
	return nil
}

const stateVersion = 1

// encode is a window's state as the store and the changelog keep it. Each function's state
// is named by its output field and function, so that a state outlives a change of the
// stage's aggregates (a field added starts empty, one removed is forgotten).
func (ws *winState) encode(specs []aggSpec) ([]byte, error) {
	b := []byte{stateVersion}
	b = binary.AppendVarint(b, ws.end)
	b = binary.AppendVarint(b, ws.maxTime)
	b = binary.AppendUvarint(b, uint64(ws.count))
	b, err := appendValue(b, ws.key)
	if err != nil {
		return nil, err
	}
	b = binary.AppendUvarint(b, uint64(len(specs)))
	for i, sp := range specs {
		a := &ws.aggs[i]
		b = appendBytes(b, []byte(sp.name))
		b = append(b, byte(sp.fn), boolByte(a.has)|boolByte(a.isFloat)<<1)
		switch sp.fn {
		case fnSum:
			b = binary.AppendVarint(b, a.i)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(a.f))
		case fnAvg:
			b = binary.AppendVarint(b, a.n)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(a.f))
		case fnMin, fnMax, fnFirst, fnLast:
			b = binary.AppendVarint(b, a.ms)
			if b, err = appendValue(b, a.v); err != nil {
				return nil, fmt.Errorf("%s: %w", sp.label, err)
			}
		case fnCountDistinct:
			if a.hll != nil {
				b = append(b, 1)
				b = append(b, a.hll...)
				continue
			}
			b = append(b, 0)
			b = binary.AppendUvarint(b, uint64(len(a.set)))
			for _, h := range a.set {
				b = binary.BigEndian.AppendUint64(b, h)
			}
		}
	}
	return b, nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// stateHeader reads what a restore needs of a state without decoding it: its end and the
// latest event time in it.
func stateHeader(v []byte) (end, maxTime int64, err error) {
	r := &reader{b: v}
	if r.byte() != stateVersion {
		return 0, 0, errState
	}
	end, maxTime = r.varint(), r.varint()
	return end, maxTime, r.err
}

// decodeState reads a window's state for specs.
func decodeState(specs []aggSpec, start int64, v []byte) (*winState, error) {
	r := &reader{b: v}
	if r.byte() != stateVersion {
		return nil, errState
	}
	ws := &winState{start: start, end: r.varint(), maxTime: r.varint(), count: int64(r.uvarint()), aggs: make([]aggState, len(specs))}
	ws.key = r.value()
	n := r.uvarint()
	for range n {
		name := string(r.bytes(r.uvarint()))
		fn := aggFunc(r.byte())
		flags := r.byte()
		a := aggState{has: flags&1 != 0, isFloat: flags&2 != 0}
		switch fn {
		case fnSum:
			a.i, a.f = r.varint(), math.Float64frombits(r.u64())
		case fnAvg:
			a.n, a.f = r.varint(), math.Float64frombits(r.u64())
		case fnMin, fnMax, fnFirst, fnLast:
			a.ms, a.v = r.varint(), r.value()
		case fnCountDistinct:
			if r.byte() == 1 {
				a.hll = slices.Clone(r.bytes(1 << hllBits))
				break
			}
			k := r.uvarint()
			if k > distinctExact {
				return nil, errState
			}
			for range k {
				a.set = append(a.set, r.u64())
			}
		case fnCount:
		default:
			return nil, errState
		}
		if r.err != nil {
			return nil, r.err
		}
		for i, sp := range specs {
			if sp.name == name && sp.fn == fn {
				ws.aggs[i] = a
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return ws, nil
}
