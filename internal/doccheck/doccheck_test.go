package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

const repo = "../.."

// markdown lists README.md, ARCHITECTURE.md and every Markdown file under docs/, from repo.
func markdown(t *testing.T) []string {
	t.Helper()
	docs, err := DocsMarkdown(repo)
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md", "ARCHITECTURE.md"}, docs...)
}

// prose is a Markdown file's text outside fenced code blocks, line by line ("" in a block).
func prose(src string) []string {
	lines := strings.Split(src, "\n")
	fence := ""
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		switch {
		case fence == "" && strings.HasPrefix(trimmed, "```"):
			fence = trimmed[:strings.LastIndex(trimmed, "`")+1]
			lines[i] = ""
		case fence != "":
			if trimmed == fence {
				fence = ""
			}
			lines[i] = ""
		}
	}
	return lines
}

var (
	heading    = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*$`)
	notInSlug  = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	link       = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	inlineCode = regexp.MustCompile("`[^`]*`")
)

// anchors are the anchors GitHub gives a Markdown file's headings: lower case, punctuation
// gone, spaces as hyphens, a repeated one numbered.
func anchors(src string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range prose(src) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := strings.ReplaceAll(notInSlug.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// Every relative link of README.md, ARCHITECTURE.md and docs/ names a file that exists, and
// an anchor that a heading of its Markdown file makes.
func TestLinksResolve(t *testing.T) {
	cache := map[string]map[string]bool{}
	anchorsOf := func(rel string) map[string]bool {
		if a, ok := cache[rel]; ok {
			return a
		}
		src, _ := os.ReadFile(filepath.Join(repo, rel))
		cache[rel] = anchors(string(src))
		return cache[rel]
	}
	checked := 0
	for _, file := range markdown(t) {
		src, err := os.ReadFile(filepath.Join(repo, file))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range prose(string(src)) {
			for _, m := range link.FindAllStringSubmatch(inlineCode.ReplaceAllString(line, ""), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				path, anchor, _ := strings.Cut(target, "#")
				rel := file
				if path != "" {
					rel = filepath.ToSlash(filepath.Join(filepath.Dir(file), path))
					if _, err := os.Stat(filepath.Join(repo, rel)); err != nil {
						t.Errorf("%s:%d: link %s: no file %s", file, i+1, target, rel)
						continue
					}
				}
				if anchor != "" && strings.HasSuffix(rel, ".md") && !anchorsOf(rel)[anchor] {
					t.Errorf("%s:%d: link %s: %s has no heading with anchor #%s", file, i+1, target, rel, anchor)
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d relative links found", checked)
	}
}

func TestAnchors(t *testing.T) {
	got := anchors("# A `b` c\n## Performance, 2026-11-27\n```\n# not a heading\n```\n## A b c\n### Try, look, replay: `dev`, `tap` and `dlq replay`\n")
	for _, want := range []string{"a-b-c", "performance-2026-11-27", "a-b-c-1", "try-look-replay-dev-tap-and-dlq-replay"} {
		if !got[want] {
			t.Errorf("no anchor %s in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a line in a code block made an anchor")
	}
}

// ARCHITECTURE.md stays readable in a terminal: no line over 120 characters.
func TestArchitectureLineWidth(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repo, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(src), "\n") {
		if n := utf8.RuneCountInString(line); n > 120 {
			t.Errorf("ARCHITECTURE.md:%d is %d characters long, over 120: wrap it", i+1, n)
		}
	}
}
