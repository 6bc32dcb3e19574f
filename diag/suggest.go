package diag

// Suggest returns the candidate closest to word when it is close enough to be a likely
// misspelling, or "" when none is. The word itself is never suggested: where it is a
// candidate, it was not what the place wanted.
func Suggest(word string, candidates []string) string {
	best, bestDist := "", len(word)/3+1
	if bestDist > 3 {
		bestDist = 3
	}
	for _, c := range candidates {
		if c == word {
			continue
		}
		if d := distance(word, c); d < bestDist || (d == bestDist && best == "" && d <= 2) {
			best, bestDist = c, d
		}
	}
	return best
}

// DidYouMean is Suggest phrased for the end of a message: " (did you mean x?)" or "".
func DidYouMean(word string, candidates []string) string {
	return SuggestionText(Suggest(word, candidates))
}

// SuggestionText phrases a suggestion already chosen: " (did you mean s?)", or "" for none.
func SuggestionText(s string) string {
	if s == "" {
		return ""
	}
	return " (did you mean " + s + "?)"
}

// distance is the Damerau–Levenshtein (optimal string alignment) distance.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
