package record

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AppendJSON appends v as JSON, byte for byte what encoding/json's Marshal writes (sorted
// keys, HTML-safe strings, its float format), without its reflection: sinks encode every
// decoded body, and Marshal was a tenth of a pipeline's CPU. The values decoding and
// expressions make are written here; any other type goes through encoding/json.
// FuzzAppendJSON checks the two agree.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, t), nil
	case string:
		return appendString(dst, t), nil
	case int:
		return strconv.AppendInt(dst, int64(t), 10), nil
	case int64:
		return strconv.AppendInt(dst, t, 10), nil
	case uint64:
		return strconv.AppendUint(dst, t, 10), nil
	case float64:
		return appendFloat(dst, t)
	case json.Number:
		if t == "" {
			return append(dst, '0'), nil
		}
		if !json.Valid([]byte(t)) {
			break // Marshal says why
		}
		return append(dst, t...), nil
	case map[string]any:
		return appendObject(dst, t)
	case *Object:
		return t.appendJSON(dst)
	case Raw:
		return append(dst, t...), nil
	case []any:
		dst = append(dst, '[')
		for i, x := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = AppendJSON(dst, x); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case []byte:
		if t == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, t)
		return append(dst, '"'), nil
	case time.Time:
		b, err := t.MarshalJSON()
		if err != nil {
			break // Marshal wraps it
		}
		return append(dst, b...), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

func appendObject(dst []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	// The fields are taken with their values in one pass over the map, then sorted: looking
	// each value up again by its sorted name was a hash per field.
	var small [16]field // most bodies have few fields: no allocation for them
	fields := small[:0]
	if len(m) > len(small) {
		fields = make([]field, 0, len(m))
	}
	for k, v := range m {
		fields = append(fields, field{k, v})
	}
	sortFields(fields)
	dst = append(dst, '{')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f.name)
		dst = append(dst, ':')
		var err error
		if dst, err = AppendJSON(dst, f.value); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// field is a field of an object being written.
type field struct {
	name  string
	value any
}

// sortFields sorts fields by name: by insertion when few (a body's usual handful, where it
// beats a general sort's calls of a comparison), else by slices.SortFunc.
func sortFields(fields []field) {
	if len(fields) > 12 {
		slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
		return
	}
	for i := 1; i < len(fields); i++ {
		for j := i; j > 0 && fields[j].name < fields[j-1].name; j-- {
			fields[j], fields[j-1] = fields[j-1], fields[j]
		}
	}
}

// appendFloat writes f as encoding/json does: like ES6, 'e' notation only below 1e-6 and
// from 1e21, with the exponent unpadded.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if n := len(dst); format == 'e' && n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes a JSON string holds as they are: not a quote, a backslash, <, >, & or a control.
var plain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// appendString quotes s as encoding/json does with HTML escaping: <, > and & as \u00XX,
// control bytes escaped, bytes that are not UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if plain[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
