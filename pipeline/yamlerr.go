package pipeline

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// parseYAML parses the (masked) text into nodes; nil, with the syntax error reported, when it
// is not YAML.
func parseYAML(p *spec.Parser, text string) *yaml.Node {
	var doc yaml.Node
	err := yaml.Unmarshal([]byte(text), &doc)
	if err == nil {
		return &doc
	}
	line, msg := 1, err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		msg = m[2]
		if m[1] != "" {
			line, _ = strconv.Atoi(m[1])
			line = max(1, min(line, len(p.Lines))) // libyaml may name the line after the last
		}
	}
	at, msg := syntaxError(p.Lines, line, msg, func() int { return failingLine(text, line, msg) })
	p.Errorf(diag.Pos{File: p.File, Line: at.line, Col: at.col}, "", "YAML syntax: %s", msg)
	return nil
}

// place is a line and a rune column in the file, both 1-based.
type place struct{ line, col int }

var (
	flowQuestion = regexp.MustCompile(`[{\[,][^"'\n]*\w\?[\s,:\]}]`)
	questionWord = regexp.MustCompile(`\w+\?[\s,:\]}]`)
	// a nested type marked optional after it, as a scalar type is: `after: {id: int}?`
	optionalAfter = regexp.MustCompile(`^(\s*(?:-\s+)?)([^\s:#'"][^:#]*?):\s+([\[{].*[\]}])\?\s*(?:#.*)?$`)
	flowTernary   = regexp.MustCompile(`[{,]\s*[\w.-]+:\s+([^'"{\[\s][^,}]*\s\?\s[^,}]*)`)
	// an expression's nil-safe ?. or ?? inside {…}: `{total: msg.x?.y ?? 0}`
	flowNilSafe = regexp.MustCompile(`[{,]\s*[\w.-]+:\s+([^'"{\[\s][^,}]*(?:\?\.|\?\?)[^,}]*)`)
)

// syntaxError points libyaml's message at the line to fix, which is not always the one it
// names (a tab or a misindented line is reported at the block it breaks, a line or more
// above), and says what is likely wrong.
func syntaxError(lines []string, line int, msg string, failing func() int) (place, string) {
	at := place{line, 1}
	for i := line - 1; i < len(lines); i++ {
		if m := optionalAfter.FindStringSubmatchIndex(lines[i]); m != nil {
			l := lines[i]
			return place{i + 1, runes(l[:m[7]]) + 1}, fmt.Sprintf("%s: a ? after a {…} or […] type is not YAML: mark the field optional on its key instead: %s?: %s",
				msg, l[m[4]:m[5]], l[m[6]:m[7]])
		}
	}
	switch {
	case strings.HasPrefix(msg, "did not find expected ','"):
		// libyaml's flow scanner stops at a `?` in a plain scalar: say so, and where.
		for i, l := range lines {
			if flowQuestion.MatchString(l) {
				m := questionWord.FindStringIndex(l)
				return place{i + 1, runes(l[:m[0]]) + 1}, msg + fmt.Sprintf(`: a ? inside {…} or […] must be quoted: "%s"`, l[m[0]:m[1]-1])
			}
		}
		for i, l := range lines { // an expression's ? : inside {…}
			if m := flowTernary.FindStringSubmatchIndex(l); m != nil {
				value := strings.TrimSpace(l[m[2]:m[3]])
				return place{i + 1, runes(l[:m[2]]) + 1}, msg + fmt.Sprintf(": an expression holding ? or : inside {…} must be quoted: '%s'", strings.ReplaceAll(value, "'", "''"))
			}
		}
		for i, l := range lines { // an expression's ?. or ?? inside {…}, which libyaml reads as a key's ?
			if m := flowNilSafe.FindStringSubmatchIndex(l); m != nil {
				value := strings.TrimSpace(l[m[2]:m[3]])
				return place{i + 1, runes(l[:m[2]]) + 1}, msg + ": an expression holding ?. or ?? inside {…} must be quoted: " + quoted(value)
			}
		}
	case strings.Contains(msg, "found a tab character"):
		for i := line - 1; i < len(lines); i++ {
			if ws := leading(lines[i]); strings.Contains(ws, "\t") {
				return place{i + 1, runes(ws[:strings.Index(ws, "\t")]) + 1}, "a tab in the indentation: YAML indents with spaces only"
			}
		}
	case strings.HasPrefix(msg, "mapping values are not allowed"):
		l := lines[line-1]
		if strings.Count(l, ": ") > 1 {
			// A plain value holding ": " (an expression's `? :`, a message) reads as a second key.
			idx := strings.Index(l, ": ") + 2
			rest := strings.TrimSpace(l[idx:])
			return place{line, runes(l[:idx]) + 1}, msg + fmt.Sprintf(": this value holds \": \", which YAML reads as another key; quote it: '%s'", strings.ReplaceAll(rest, "'", "''"))
		}
		if prev := previousContent(lines, line); prev > 0 && indent(l) > keyIndent(lines[prev-1]) && !opensBlock(lines[prev-1]) {
			return place{line, indent(l) + 1}, fmt.Sprintf("%s: this line is indented deeper than line %d (%d spaces against %d), whose value it would continue; indent it as that line's siblings",
				msg, prev, indent(l), keyIndent(lines[prev-1]))
		}
	case strings.HasPrefix(msg, "did not find expected"):
		bad, levels, ok := misindented(lines, line)
		truth := failing()
		if ok && (truth == 0 || truth == bad) {
			return place{bad, indent(lines[bad-1]) + 1}, fmt.Sprintf("%s: this line is indented %s, which lines up with no block above it (those are at %s)",
				msg, spaces(indent(lines[bad-1])), levelList(levels))
		}
		if truth > 0 {
			return misfit(lines, truth, msg)
		}
	}
	return at, msg
}

// failingLine is the line that makes the YAML text fail with msg: the first whose prefix of
// the text, cut after it, fails so. libyaml names the line where the block it was parsing
// began (yaml.v3 reports its context mark), which may be many lines above. 0 when none does.
func failingLine(text string, from int, msg string) int {
	lines := strings.SplitAfter(text, "\n")
	prefix := strings.Join(lines[:min(from-1, len(lines))], "")
	for i := from - 1; i < len(lines); i++ {
		prefix += lines[i]
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(prefix), &doc); err != nil {
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil && m[2] == msg {
				return i + 1
			}
		}
	}
	return 0
}

var quotedThenMore = regexp.MustCompile(`^\s*(?:-\s+)?[^\s:#'"][^:#]*:\s+(("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')\s*([^\s#].*?))\s*$`)

// misfit says why line, where libyaml failed, does not fit: a quoted value with more after
// it, or an indentation that matches no open block, or an item's key at its list's "-".
func misfit(lines []string, line int, msg string) (place, string) {
	l := lines[line-1]
	if m := quotedThenMore.FindStringSubmatchIndex(l); m != nil {
		value := l[m[2]:m[3]]
		return place{line, runes(l[:m[6]]) + 1}, fmt.Sprintf("%s: a value that starts with a quote ends at its closing quote, and %s after it is not YAML; quote the whole value: '%s'",
			msg, l[m[6]:m[7]], strings.ReplaceAll(value, "'", "''"))
	}
	ind := indent(l)
	at := place{line, ind + 1}
	levels, items := openBlocks(lines, line)
	switch {
	case !slices.Contains(levels, ind):
		return at, fmt.Sprintf("%s: this line is indented %s, which lines up with no block above it (those are at %s)", msg, spaces(ind), levelList(levels))
	case items[ind] > 0 && !strings.HasPrefix(l[ind:], "- ") && strings.TrimSpace(l[ind:]) != "-":
		item := lines[items[ind]-1]
		return at, fmt.Sprintf("%s: this line is indented %s, as the \"-\" of the list item on line %d, but starts no item: indent it as that item's keys (%s)",
			msg, spaces(ind), items[ind], spaces(keyIndent(item)))
	}
	return at, msg
}

// openBlocks are the indentations of the blocks open at line, outermost first, found going
// up from it; items maps those that are a list's "-" to the line of the nearest such item.
func openBlocks(lines []string, line int) (levels []int, items map[int]int) {
	items = map[int]int{}
	lowest := -1
	for i := line - 2; i >= 0 && lowest != 0; i-- {
		l := lines[i]
		if c := strings.TrimSpace(l); c == "" || strings.HasPrefix(c, "#") {
			continue
		}
		ind := indent(l)
		if lowest >= 0 && ind >= lowest {
			continue
		}
		if k := keyIndent(l); k > ind && (lowest < 0 || k < lowest) {
			levels = append(levels, k)
		}
		if strings.HasPrefix(l[ind:], "-") {
			items[ind] = i + 1
		}
		levels = append(levels, ind)
		lowest = ind
	}
	slices.Reverse(levels)
	return levels, items
}

// misindented finds, from line from on, the first line whose indentation lines up with no
// block open above it: the line libyaml's "did not find expected" is about, though it names
// the block's first line. It also returns the indentations that were open.
func misindented(lines []string, from int) (line int, levels []int, ok bool) {
	levels = []int{}
	opens := true // the first line may be deeper than nothing
	for i := from - 1; i < len(lines); i++ {
		l := lines[i]
		if content := strings.TrimSpace(l); content == "" || strings.HasPrefix(content, "#") {
			continue
		}
		ind := indent(l)
		open := slices.Clone(levels)
		for len(levels) > 0 && levels[len(levels)-1] > ind {
			levels = levels[:len(levels)-1]
		}
		switch {
		case len(levels) > 0 && levels[len(levels)-1] == ind:
		case len(levels) > 0 && !opens:
			return i + 1, open, true
		default:
			levels = append(levels, ind)
		}
		// A sequence item opens a block at its content: "  - name: x" at 2 has its keys at 4.
		if k := keyIndent(l); k > ind {
			levels = append(levels, k)
		}
		opens = opensBlock(l)
	}
	return 0, nil, false
}

// opensBlock reports a line after which a deeper one belongs to it: "key:" with its value on
// the lines below, or a bare "-".
func opensBlock(l string) bool {
	if i := strings.Index(l, " #"); i >= 0 {
		l = l[:i]
	}
	l = strings.TrimSpace(l)
	return strings.HasSuffix(l, ":") || l == "-"
}

// previousContent is the number of the last line before line that is not blank or a
// comment; 0 when there is none.
func previousContent(lines []string, line int) int {
	for i := line - 2; i >= 0; i-- {
		if c := strings.TrimSpace(lines[i]); c != "" && !strings.HasPrefix(c, "#") {
			return i + 1
		}
	}
	return 0
}

func leading(l string) string { return l[:len(l)-len(strings.TrimLeft(l, " \t"))] }

func indent(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

// keyIndent is where a line's key starts: past the "- " of a sequence item.
func keyIndent(l string) int {
	n := indent(l)
	for strings.HasPrefix(l[n:], "- ") {
		n = len(l) - len(strings.TrimLeft(l[n+1:], " "))
	}
	return n
}

func spaces(n int) string {
	if n == 1 {
		return "1 space"
	}
	return strconv.Itoa(n) + " spaces"
}

// quoted is value as a YAML quoted scalar: in single quotes, or in double quotes when it
// holds single quotes and no double quote or backslash, so that its text reads as written.
func quoted(value string) string {
	if strings.Contains(value, "'") && !strings.ContainsAny(value, `"\\`) {
		return `"` + value + `"`
	}
	return "'" + strings.ReplaceAll(value, "'", "''") + "'"
}

func runes(s string) int { return utf8.RuneCountInString(s) }

func levelList(levels []int) string {
	parts := make([]string, len(levels))
	for i, n := range levels {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ", ")
}
