package pipeline

import (
	"strings"
	"unicode/utf8"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

// LookupEnv finds an environment variable; os.LookupEnv in production, a map in tests.
type LookupEnv func(name string) (string, bool)

// edit records that runes [newStart,newEnd) of an interpolated line came from runes
// [origStart,origEnd) of the original line (columns are 0-based).
type edit struct{ newStart, newEnd, origStart, origEnd int }

// posMap maps positions in the interpolated text back to the original file.
type posMap map[int][]edit // by 1-based line

// orig maps a 1-based rune column of an interpolated line to the original column.
func (m posMap) orig(p diag.Pos) diag.Pos {
	shift := 0
	for _, e := range m[p.Line] {
		c := p.Col - 1
		if c < e.newStart {
			break
		}
		if c < e.newEnd {
			p.Col = e.origStart + 1
			return p
		}
		shift = e.origEnd - e.newEnd
	}
	p.Col += shift
	return p
}

// unresolved is a ${VAR} without value or default (or with an invalid name), reported once the YAML is parsed so that
// the diagnostic can name the field it sits in.
type unresolved struct {
	pos diag.Pos // in original coordinates
	msg string
}

// interpolate replaces ${VAR} and ${VAR:-default} in src with values from env, line by line,
// keeping line numbers intact; $${ stands for a literal ${. Problems that have no field yet
// (an unterminated ${, a value with a line break) are added to diags directly.
func interpolate(file string, src []byte, env LookupEnv, diags *diag.List) ([]byte, posMap, []unresolved) {
	if !strings.Contains(string(src), "${") {
		return src, nil, nil
	}
	m := posMap{}
	var missing []unresolved
	lines := strings.Split(string(src), "\n")
	for i, line := range lines {
		if !strings.Contains(line, "${") {
			continue
		}
		var out strings.Builder
		var edits []edit
		newCol, origCol := 0, 0 // rune columns
		for rest := line; rest != ""; {
			j := strings.Index(rest, "${")
			if j < 0 {
				out.WriteString(rest)
				break
			}
			if j > 0 && rest[j-1] == '$' { // $${ → literal ${
				lit := rest[:j-1] + "${"
				out.WriteString(lit)
				n := utf8.RuneCountInString(rest[:j-1])
				edits = append(edits, edit{newCol + n, newCol + n + 2, origCol + n, origCol + n + 3})
				newCol += utf8.RuneCountInString(lit)
				origCol += utf8.RuneCountInString(rest[:j+2])
				rest = rest[j+2:]
				continue
			}
			out.WriteString(rest[:j])
			n := utf8.RuneCountInString(rest[:j])
			newCol += n
			origCol += n
			pos := diag.Pos{File: file, Line: i + 1, Col: origCol + 1}
			end := strings.IndexByte(rest[j:], '}')
			if end < 0 {
				diags.Add(pos, "", "unterminated ${: write ${NAME} or ${NAME:-default} (or $${ for a literal ${)")
				out.WriteString(rest[j:])
				break
			}
			ref := rest[j+2 : j+end]
			name, def, hasDef := strings.Cut(ref, ":-")
			var val string
			switch {
			case !validVarName(name):
				missing = append(missing, unresolved{pos: pos,
					msg: "invalid variable reference ${" + ref + "}: a name is letters, digits and _, not starting with a digit"})
				val = "invalid"
			default:
				v, ok := env(name)
				switch {
				case ok && (v != "" || !hasDef):
					val = v
				case hasDef:
					val = def
				default:
					// Keep the name in place so that the field still parses and can be named.
					missing = append(missing, unresolved{pos: pos,
						msg: "environment variable " + name + " is not set (write ${" + name + ":-default} to give a default)"})
					val = name
				}
			}
			if strings.ContainsAny(val, "\r\n") {
				diags.Add(pos, "", "the value of ${%s} contains a line break, which a pipeline file cannot take in place", name)
				val = strings.NewReplacer("\r", " ", "\n", " ").Replace(val)
			}
			refLen := utf8.RuneCountInString(rest[j : j+end+1])
			valLen := utf8.RuneCountInString(val)
			edits = append(edits, edit{newCol, newCol + valLen, origCol, origCol + refLen})
			out.WriteString(val)
			newCol += valLen
			origCol += refLen
			rest = rest[j+end+1:]
		}
		lines[i] = out.String()
		m[i+1] = edits
	}
	return []byte(strings.Join(lines, "\n")), m, missing
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
