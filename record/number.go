package record

import (
	"encoding/json"
	"strconv"
)

// Number is the value of a JSON number literal as DecodeJSON keeps it:
//   - an integer (no fraction, no exponent) that fits int64 is an int (an int64 where int
//     is 32 bits);
//   - any other integer stays a json.Number, re-encoded digit for digit. Not a uint64:
//     expr-lang compares and computes with uint64 through int, so 2^64-1 > 0 would be false;
//     a json.Number is an error in arithmetic instead (the expr package's int() and float()
//     convert it);
//   - a number with a fraction or an exponent is a float64 (the nearest double, as every
//     JSON reader has it), unless it is beyond float64's range (1e400, 1e-400), where it stays
//     a json.Number rather than become ±Inf or 0.
func Number(n json.Number) any {
	s := string(n)
	integer := true
	for i := 0; i < len(s) && integer; i++ {
		integer = s[i] != '.' && s[i] != 'e' && s[i] != 'E'
	}
	if integer {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return intOrInt64(i)
		}
		return n
	}
	if f, ok := parseFloat(s); ok {
		return f
	}
	return n
}

// parseFloat parses a number literal with a fraction or an exponent, false when it is beyond
// float64 (ParseFloat gives ±Inf) or below it (0 for 1e-400).
func parseFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || (f == 0 && nonZeroMantissa(s)) {
		return 0, false
	}
	return f, true
}

func intOrInt64(i int64) any {
	if int64(int(i)) == i {
		return int(i)
	}
	return i
}

// nonZeroMantissa reports whether a number literal has a digit other than 0 before its
// exponent: such a number that parses as 0 has underflowed.
func nonZeroMantissa(s string) bool {
	for _, c := range s {
		switch {
		case c == 'e' || c == 'E':
			return false
		case c >= '1' && c <= '9':
			return true
		}
	}
	return false
}
