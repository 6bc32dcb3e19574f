package diag

import "strings"

// Abbreviate puts s on one line and cuts it to at most n runes, ending with "…" when cut: for
// expressions quoted in graph labels and summaries.
func Abbreviate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
