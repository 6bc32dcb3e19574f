package expr

// FuncDoc is a function an expression can call: its name, how it is called, what it does
// in one line. An example in the line is written `CALL` is `RESULT`, both expressions, and
// the tests check that they compute the same.
type FuncDoc struct{ Name, Sig, Doc string }

// FuncGroup is functions of one kind, for the reference.
type FuncGroup struct {
	Name  string
	Funcs []FuncDoc
}

// Builtins are expr-lang's builtins as pythia-pipe's expressions have them (int and float
// checked, numbers.go), by kind. A test fails when expr-lang has a builtin this list does not
// document, or documents one it no longer has, so that an upgrade cannot drift from the docs.
var Builtins = []FuncGroup{
	{"Strings", []FuncDoc{
		{"trim", "trim(s[, chars]) string", "s without the white space, or the characters of chars, at both ends: `trim(\"_a_\", \"_\")` is `\"a\"`"},
		{"trimPrefix", "trimPrefix(s, prefix) string", "s without prefix at its start, when it begins with it: `trimPrefix(\"v1.2\", \"v\")` is `\"1.2\"`"},
		{"trimSuffix", "trimSuffix(s, suffix) string", "s without suffix at its end, when it ends with it: `trimSuffix(\"a.json\", \".json\")` is `\"a\"`"},
		{"upper", "upper(s) string", "s in upper case: `upper(\"eu\")` is `\"EU\"`"},
		{"lower", "lower(s) string", "s in lower case: `lower(\"EU\")` is `\"eu\"`"},
		{"split", "split(s, sep[, n]) [string]", "s cut at each sep (into n pieces at most): `split(\"a,b,c\", \",\", 2)` is `[\"a\", \"b,c\"]`"},
		{"splitAfter", "splitAfter(s, sep[, n]) [string]", "as split, each piece keeping its sep: `splitAfter(\"a,b\", \",\")` is `[\"a,\", \"b\"]`"},
		{"replace", "replace(s, old, new) string", "s with every old replaced by new: `replace(\"a-b-c\", \"-\", \"/\")` is `\"a/b/c\"`"},
		{"repeat", "repeat(s, n) string", "s n times: `repeat(\"ab\", 2)` is `\"abab\"`"},
		{"indexOf", "indexOf(s, sub) int", "where sub first begins in s, in bytes, -1 when nowhere: `indexOf(\"a-b-c\", \"-\")` is `1`"},
		{"lastIndexOf", "lastIndexOf(s, sub) int", "where sub last begins in s, in bytes, -1 when nowhere: `lastIndexOf(\"a-b-c\", \"-\")` is `3`"},
		{"hasPrefix", "hasPrefix(s, prefix) bool", "whether s begins with prefix (the operator `s startsWith prefix`): `hasPrefix(\"orders-eu\", \"orders-\")` is `true`"},
		{"hasSuffix", "hasSuffix(s, suffix) bool", "whether s ends with suffix (`s endsWith suffix`): `hasSuffix(\"a.json\", \".json\")` is `true`"},
		{"join", "join(list[, sep]) string", "the strings of list, sep between them (none by default): `join([\"a\", \"b\"], \", \")` is `\"a, b\"`"},
	}},
	{"Numbers", []FuncDoc{
		{"abs", "abs(n) number", "n without its sign: `abs(-2.5)` is `2.5`"},
		{"ceil", "ceil(n) float", "the least whole number not below n: `ceil(1.2)` is `2.0`"},
		{"floor", "floor(n) float", "the greatest whole number not above n: `floor(1.8)` is `1.0`"},
		{"round", "round(n) float", "the nearest whole number, halves away from zero: `round(2.5)` is `3.0`"},
		{"max", "max(n, ...) number", "the greatest of numbers, or of a list's: `max(3, 7, 5)` is `7`"},
		{"min", "min(n, ...) number", "the least of numbers, or of a list's: `min([3, 7, 5])` is `3`"},
		{"sum", "sum(list[, expr]) number", "the sum of a list's numbers, or of expr for each item (`#`): `sum([1, 2, 3], # * 2)` is `12`"},
		{"mean", "mean(list) float", "the mean of a list's numbers: `mean([1, 2])` is `1.5`"},
		{"median", "median(list) float", "the median of a list's numbers: `median([1, 2, 3, 4])` is `2.5`"},
		{"int", "int(v) int", "v as an int: a float without its fraction (toward zero), a string of digits read; an error (the record goes to the DLQ) for nil, a text that is no integer, a number out of int's range: `int(\"42\")` is `42`, `int(-2.7)` is `-2`"},
		{"float", "float(v) float", "v as a float: a string read; an error for nil, a text that is no number, a number beyond float's range: `float(\"2.5\")` is `2.5`"},
	}},
	{"Lists", []FuncDoc{
		{"len", "len(v) int", "the items of a list, the keys of a map, the characters of a string: `len(\"héllo\")` is `5`"},
		{"all", "all(list, cond) bool", "whether cond holds for every item (`#`, or `.field` of it); true for none: `all([1, 2], # > 0)` is `true`"},
		{"any", "any(list, cond) bool", "whether cond holds for some item; false for none: `any([{\"n\": 1}, {\"n\": 5}], .n > 3)` is `true`"},
		{"one", "one(list, cond) bool", "whether cond holds for exactly one item: `one([1, 2, 3], # > 2)` is `true`"},
		{"none", "none(list, cond) bool", "whether cond holds for no item: `none([1, 2], # > 2)` is `true`"},
		{"filter", "filter(list, cond) list", "the items cond holds for: `filter([1, 2, 3], # > 1)` is `[2, 3]`"},
		{"map", "map(list, expr) list", "expr of each item: `map([1, 2], # * 10)` is `[10, 20]`"},
		{"find", "find(list, cond) any", "the first item cond holds for, nil when none: `find([1, 2, 3], # > 1)` is `2`"},
		{"findIndex", "findIndex(list, cond) int", "the index of the first item cond holds for, -1 when none: `findIndex([1, 2, 3], # > 1)` is `1`"},
		{"findLast", "findLast(list, cond) any", "the last item cond holds for, nil when none: `findLast([1, 2, 3], # > 1)` is `3`"},
		{"findLastIndex", "findLastIndex(list, cond) int", "the index of the last item cond holds for, -1 when none: `findLastIndex([1, 2, 3], # > 1)` is `2`"},
		{"count", "count(list[, cond]) int", "the items cond holds for, or the true items: `count([1, 2, 3], # > 1)` is `2`"},
		{"groupBy", "groupBy(list, expr) map", "the items under the value of expr for each: `groupBy([1, 2, 3], # % 2 == 0 ? \"even\" : \"odd\").odd` is `[1, 3]`"},
		{"reduce", "reduce(list, expr[, initial]) any", "expr over the items in turn, `#acc` what it computed so far (the first item, or initial): `reduce([1, 2, 3], #acc + #, 10)` is `16`"},
		{"sort", "sort(list[, \"asc\"|\"desc\"]) list", "the items in order: `sort([3, 1, 2], \"desc\")` is `[3, 2, 1]`"},
		{"sortBy", "sortBy(list, expr[, \"asc\"|\"desc\"]) list", "the items in the order of expr of each: `sortBy([{\"n\": 2}, {\"n\": 1}], .n)` is `[{\"n\": 1}, {\"n\": 2}]`"},
		{"first", "first(list) any", "the first item, nil for an empty list: `first([1, 2])` is `1`"},
		{"last", "last(list) any", "the last item, nil for an empty list: `last([1, 2])` is `2`"},
		{"take", "take(list, n) list", "the first n items (all when fewer): `take([1, 2, 3], 2)` is `[1, 2]`"},
		{"reverse", "reverse(list) list", "the items from last to first: `reverse([1, 2, 3])` is `[3, 2, 1]`"},
		{"uniq", "uniq(list) list", "the items without repeats, in order: `uniq([1, 2, 1])` is `[1, 2]`"},
		{"concat", "concat(list, list, ...) list", "the lists one after the other: `concat([1], [2, 3])` is `[1, 2, 3]`"},
		{"flatten", "flatten(list) list", "the items, those of inner lists in their place: `flatten([1, [2, [3]]])` is `[1, 2, 3]`"},
		{"get", "get(v, index) any", "item index of a list (from the end when negative), or key index of a map; nil when there is none: `get([1, 2], -1)` is `2`, `get({\"a\": 1}, \"b\")` is `nil`"},
	}},
	{"Maps", []FuncDoc{
		{"keys", "keys(map) list", "the keys, in no set order: `keys({\"a\": 1})` is `[\"a\"]`"},
		{"values", "values(map) list", "the values, in no set order: `values({\"a\": 1})` is `[1]`"},
		{"toPairs", "toPairs(map) list", "[key, value] pairs, in no set order: `toPairs({\"a\": 1})` is `[[\"a\", 1]]`"},
		{"fromPairs", "fromPairs(list) map", "the map of [key, value] pairs: `fromPairs([[\"a\", 1]])` is `{\"a\": 1}`"},
	}},
	{"Time", []FuncDoc{
		{"now", "now() time", "the time now, on this host's clock (a record's own time is `timestamp`)"},
		{"date", "date(s[, layout[, zone]]) time", "s as a time: RFC 3339, `2006-01-02`, `2006-01-02 15:04:05`, `15:04:05`, RFC 822, 850 or 1123; or as laid out by layout, in Go's notation; in zone, UTC by default: `date(\"26/11/2026\", \"02/01/2006\").Day()` is `26`"},
		{"duration", "duration(s) duration", "s as a duration (units ns, us, ms, s, m, h), to add to or subtract from a time: `duration(\"1h30m\").Minutes()` is `90.0`"},
		{"timezone", "timezone(name) zone", "the time zone of an IANA name, for a time's `In`: `date(\"2026-11-26T20:18:38Z\").In(timezone(\"Europe/Paris\")).Hour()` is `21`"},
	}},
	{"Conversion and encoding", []FuncDoc{
		{"string", "string(v) string", "v as text; a time as Go writes it (`2026-11-26 20:18:38.123 +0000 UTC`: `rfc3339` gives RFC 3339): `string(1.5)` is `\"1.5\"`"},
		{"type", "type(v) string", "v's kind: nil, bool, int, float, string, array, map, or the Go type (time.Time): `type(1.5)` is `\"float\"`"},
		{"toJSON", "toJSON(v) string", "v as JSON, indented over several lines: `toJSON([1, \"a\"])` is `\"[\\n  1,\\n  \\\"a\\\"\\n]\"`"},
		{"fromJSON", "fromJSON(s) any", "the value of the JSON text s, its numbers floats: `fromJSON(\"{\\\"n\\\": 2}\").n` is `2.0`"},
		{"toBase64", "toBase64(s) string", "s in base64: `toBase64(\"hi\")` is `\"aGk=\"`"},
		{"fromBase64", "fromBase64(s) string", "the text s encodes in base64: `fromBase64(\"aGk=\")` is `\"hi\"`"},
	}},
	{"Bits", []FuncDoc{
		{"bitand", "bitand(a, b) int", "a AND b: `bitand(12, 10)` is `8`"},
		{"bitor", "bitor(a, b) int", "a OR b: `bitor(12, 10)` is `14`"},
		{"bitxor", "bitxor(a, b) int", "a XOR b: `bitxor(12, 10)` is `6`"},
		{"bitnand", "bitnand(a, b) int", "a AND NOT b: `bitnand(12, 10)` is `4`"},
		{"bitnot", "bitnot(a) int", "NOT a: `bitnot(12)` is `-13`"},
		{"bitshl", "bitshl(a, n) int", "a shifted left by n bits: `bitshl(3, 2)` is `12`"},
		{"bitshr", "bitshr(a, n) int", "a shifted right by n bits, keeping its sign: `bitshr(-12, 2)` is `-3`"},
		{"bitushr", "bitushr(a, n) int", "a shifted right by n bits, zeros in from the left: `bitushr(-1, 60)` is `15`"},
	}},
}
