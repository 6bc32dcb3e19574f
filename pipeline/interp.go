package pipeline

// ${VAR} substitution. A variable's value must reach its field exactly as set, whatever it
// holds (`#`, `&`, quotes, `: `, a leading space, `null`), so it is substituted after YAML
// parsing, into the values of scalar nodes: YAML never reads it. But a reference is not always
// valid YAML as written (`{user: ${USER}}`: in a flow mapping `{` and `}` end a plain scalar),
// so before parsing each reference is masked by a placeholder of as many runes, made of
// private-use characters that YAML takes inside any scalar and that say which reference it
// stands for. Columns stay those of the file, and nodes carry exact positions.

import (
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// LookupEnv finds an environment variable; os.LookupEnv in production, a map in tests.
type LookupEnv func(name string) (string, bool)

const (
	markStart = '\uE000' // starts a placeholder
	markPad   = '\uE001' // fills a placeholder up to the length of its reference
	markDigit = '\uE100' // markDigit+0 … markDigit+4095: the two base-4096 digits of its index
	maxRefs   = 4096 * 4096
)

// ref is one reference in the file: ${NAME}, ${NAME:-default}, or $${ (a literal ${).
type ref struct {
	pos     diag.Pos // of its first character
	written string   // as in the file
	runes   int      // its length in runes, and its placeholder's
}

// unresolved is a ${VAR} without value or default (or with an invalid name), reported once the
// pipeline is parsed, so that the diagnostic can name the field it sits in.
type unresolved struct {
	pos  diag.Pos
	node *yaml.Node // the scalar it sits in
	name string     // the variable, when it is unset ("" for an invalid name)
	msg  string
}

// mask replaces every reference of src by its placeholder and lists the references, and where
// a ${ has no } after it on its line (left as it is, it cannot be a reference).
func mask(file, src string, diags *diag.List) (masked string, refs []ref, open []diag.Pos) {
	if !strings.Contains(src, "${") {
		return src, nil, nil
	}
	lines := strings.Split(src, "\n")
	for i, line := range lines {
		if !strings.Contains(line, "${") {
			continue
		}
		var out strings.Builder
		col := 0 // rune column (0-based) of rest in the line
		for rest := line; rest != ""; {
			j := strings.Index(rest, "${")
			if j < 0 {
				out.WriteString(rest)
				break
			}
			start, end := j, j+strings.IndexByte(rest[j:], '}')+1 // rest[start:end] is the reference
			if j > 0 && rest[j-1] == '$' {
				start, end = j-1, j+2
			} else if end == j {
				open = append(open, diag.Pos{File: file, Line: i + 1, Col: col + utf8.RuneCountInString(rest[:j]) + 1})
				out.WriteString(rest)
				break
			}
			if len(refs) == maxRefs {
				diags.Add(diag.Pos{File: file, Line: i + 1, Col: 1}, "", "more than %d ${…} references in one file", maxRefs)
				return src, nil, nil
			}
			out.WriteString(rest[:start])
			col += utf8.RuneCountInString(rest[:start])
			r := ref{pos: diag.Pos{File: file, Line: i + 1, Col: col + 1}, written: rest[start:end]}
			r.runes = utf8.RuneCountInString(r.written)
			out.WriteString(placeholder(len(refs), r.runes))
			refs = append(refs, r)
			col += r.runes
			rest = rest[end:]
		}
		lines[i] = out.String()
	}
	return strings.Join(lines, "\n"), refs, open
}

const unterminated = "unterminated ${: write ${NAME} or ${NAME:-default} (or $${ for a literal ${)"

// placeholder is the stand-in for reference i, n runes long (n ≥ 3: `$${` is the shortest).
func placeholder(i, n int) string {
	var b strings.Builder
	b.WriteRune(markStart)
	b.WriteRune(markDigit + rune(i>>12))
	b.WriteRune(markDigit + rune(i&0xFFF))
	for k := 3; k < n; k++ {
		b.WriteRune(markPad)
	}
	return b.String()
}

// substituter puts the variables' values in place of the placeholders of a parsed document.
type substituter struct {
	refs    []ref
	env     LookupEnv
	diags   *diag.List
	subs    map[*yaml.Node]*spec.Substitution
	missing []unresolved
	seen    map[*yaml.Node]bool
	literal []*yaml.Node // scalars holding a ${ that is no reference (an unterminated one)
}

// substitute replaces the placeholders in every scalar under doc (keys included) by the values
// they stand for, and says what it changed and which references it could not resolve: unset,
// invalid, or unterminated (open) in a scalar. References in comments are not read.
func substitute(doc *yaml.Node, refs []ref, open []diag.Pos, env LookupEnv, diags *diag.List) (map[*yaml.Node]*spec.Substitution, []unresolved) {
	if len(refs) == 0 && len(open) == 0 {
		return nil, nil
	}
	s := &substituter{refs: refs, env: env, diags: diags, subs: map[*yaml.Node]*spec.Substitution{}, seen: map[*yaml.Node]bool{}}
	s.walk(doc, false)
	for _, pos := range open {
		if n := holder(s.literal, pos); n != nil {
			s.missing = append(s.missing, unresolved{pos: pos, node: n, msg: unterminated})
		}
	}
	return s.subs, s.missing
}

// holder is the scalar among nodes that holds a ${ at pos: the last to start before it. Every
// ${ left after masking is an unterminated one, so only those nodes can hold it.
func holder(nodes []*yaml.Node, pos diag.Pos) *yaml.Node {
	var best *yaml.Node
	for _, n := range nodes {
		if n.Line < pos.Line || (n.Line == pos.Line && n.Column <= pos.Col) {
			if best == nil || n.Line > best.Line || (n.Line == best.Line && n.Column > best.Column) {
				best = n
			}
		}
	}
	return best
}

func (s *substituter) walk(n *yaml.Node, isKey bool) {
	// An alias is not followed: the node it names is in the tree where its anchor is.
	if n == nil || n.Kind == yaml.AliasNode || s.seen[n] {
		return
	}
	s.seen[n] = true
	if n.Kind == yaml.ScalarNode {
		s.scalar(n, isKey)
		return
	}
	for i, c := range n.Content {
		s.walk(c, n.Kind == yaml.MappingNode && i%2 == 0)
	}
}

func (s *substituter) scalar(n *yaml.Node, isKey bool) {
	if strings.Contains(n.Value, "${") {
		s.literal = append(s.literal, n)
	}
	if !strings.ContainsRune(n.Value, markStart) {
		return
	}
	var val, written strings.Builder
	var edits []spec.Edit
	in := []rune(n.Value)
	vr, wr := 0, 0 // runes written to val and to written
	for i := 0; i < len(in); {
		idx, ok := s.at(in, i)
		if !ok {
			val.WriteRune(in[i])
			written.WriteRune(in[i])
			i, vr, wr = i+1, vr+1, wr+1
			continue
		}
		r := s.refs[idx]
		v := s.value(r, n, isKey)
		k := utf8.RuneCountInString(v)
		edits = append(edits, spec.Edit{From: vr, To: vr + k, WFrom: wr, WTo: wr + r.runes})
		val.WriteString(v)
		written.WriteString(r.written)
		i, vr, wr = i+r.runes, vr+k, wr+r.runes
	}
	n.Value = val.String()
	s.subs[n] = &spec.Substitution{Written: written.String(), Edits: edits}
	const quotedOrTagged = yaml.TaggedStyle | yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
	if n.Style&quotedOrTagged == 0 {
		n.Tag = plainTag(n.Value)
	}
}

// plainTag is the type of a plain scalar whose value came (partly) from variables: what YAML
// would make of the value written there (`partitions: ${N}` with N=6 is a number), except that
// only an empty value reads as nothing; `null` or `~` in a variable is that text, and `<<` is
// not a merge key.
func plainTag(v string) string {
	tag := (&yaml.Node{Kind: yaml.ScalarNode, Value: v}).ShortTag()
	if (tag == "!!null" && v != "") || tag == "!!merge" {
		return "!!str"
	}
	return tag
}

// at says which reference's placeholder starts at in[i], if one does. Only the exact
// placeholder of a known reference counts, so text that happens to hold private-use
// characters is left alone.
func (s *substituter) at(in []rune, i int) (int, bool) {
	if in[i] != markStart || i+3 > len(in) {
		return 0, false
	}
	hi, lo := in[i+1]-markDigit, in[i+2]-markDigit
	if hi < 0 || hi > 0xFFF || lo < 0 || lo > 0xFFF {
		return 0, false
	}
	idx := int(hi)<<12 | int(lo)
	if idx >= len(s.refs) || i+s.refs[idx].runes > len(in) {
		return 0, false
	}
	for _, c := range in[i+3 : i+s.refs[idx].runes] {
		if c != markPad {
			return 0, false
		}
	}
	return idx, true
}

// value is what reference r stands for.
func (s *substituter) value(r ref, n *yaml.Node, isKey bool) string {
	if r.written == "$${" {
		return "${"
	}
	name, def, hasDef := strings.Cut(r.written[2:len(r.written)-1], ":-")
	if msg := r.invalid(); msg != "" {
		s.missing = append(s.missing, unresolved{pos: r.pos, node: n, msg: msg})
		return "invalid"
	}
	v, ok := s.env(name)
	switch {
	case ok && (v != "" || !hasDef):
	case hasDef:
		v = def
	default:
		// The name stands in, so that the field still parses and can be named.
		s.missing = append(s.missing, unresolved{pos: r.pos, node: n, name: name,
			msg: "environment variable " + name + " is not set (write ${" + name + ":-default} to give a default)"})
		return name
	}
	if isKey && strings.ContainsAny(v, "\r\n") {
		s.diags.Add(r.pos, "", "the value of ${%s} contains a line break, which a key cannot hold", name)
	}
	return v
}

// invalid says what is wrong with a reference whose name is not one; "" when nothing is.
func (r ref) invalid() string {
	if r.written == "$${" {
		return ""
	}
	body := r.written[2 : len(r.written)-1]
	if name, _, _ := strings.Cut(body, ":-"); validVarName(name) {
		return ""
	}
	for _, sep := range []string{":", "-"} { // ${VAR:default}, the shell's ${VAR-default}
		if name, def, ok := strings.Cut(body, sep); ok && validVarName(name) {
			return "invalid variable reference ${" + body + "}: a default follows :- (write ${" + name + ":-" + def + "})"
		}
	}
	return "invalid variable reference ${" + body + "}: a name is letters, digits and _, not starting with a digit"
}

// reportRefs reports the invalid and unterminated references of a file that did not parse as
// YAML: they cannot be given a field, but a reference running to a later `}` (`'${X'}`) may
// well be why the file did not parse.
func reportRefs(refs []ref, open []diag.Pos, diags *diag.List) {
	for _, r := range refs {
		if msg := r.invalid(); msg != "" {
			diags.Add(r.pos, "", "%s", msg)
		}
	}
	for _, pos := range open {
		diags.Add(pos, "", unterminated)
	}
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
