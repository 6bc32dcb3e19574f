package stages

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	excerptRead = 4 << 10 // the most of a failed answer read for its excerpt
	excerptMax  = 200     // bytes of an answer an error shows, escapes included
	redacted    = "REDACTED"
	minSecret   = 4 // a value shorter than this is not searched for in answers: it would hide too much
)

// secretParts are what a name contains when its value looks secret; secretWords are whole
// words (between non-alphanumerics) that do.
var (
	secretParts = []string{"token", "key", "secret", "passw", "passphrase", "auth", "signature", "credential", "session"}
	secretWords = []string{"sig", "pass", "pwd"}
)

// redactor hides what an HTTP lookup's errors could leak: user info, the values of query
// parameters and JSON fields whose names look secret or are in the stage's redact list, and
// in an answer's excerpt any credential of the request it echoes. Header values are never
// shown.
type redactor struct {
	names   map[string]bool // redact, lower-cased
	secrets []string        // values of the request headers whose names look secret
}

func newRedactor(names []string, headers map[string]string) *redactor {
	r := &redactor{names: map[string]bool{}}
	for _, n := range names {
		r.names[strings.ToLower(n)] = true
	}
	for k, v := range headers {
		if !r.secretName(k) {
			continue
		}
		r.secrets = append(r.secrets, v)
		if _, cred, ok := strings.Cut(v, " "); ok { // "Bearer <token>": the token alone
			r.secrets = append(r.secrets, strings.TrimSpace(cred))
		}
	}
	return r
}

// secretName reports whether a query parameter, JSON field or header called name holds a
// value to hide.
func (r *redactor) secretName(name string) bool {
	n := strings.ToLower(name)
	if r.names[n] {
		return true
	}
	for _, p := range secretParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	for _, w := range strings.FieldsFunc(n, func(c rune) bool { return !unicode.IsLetter(c) && !unicode.IsDigit(c) }) {
		for _, s := range secretWords {
			if w == s {
				return true
			}
		}
	}
	return strings.HasSuffix(n, "sig")
}

// url is s as errors show it: its user info hidden, the query's secret-looking values
// replaced, the rest as written. secrets are the values hidden, to be looked for in answers.
func (r *redactor) url(s string) (shown string, secrets []string) {
	u, err := url.Parse(s)
	if err != nil {
		return "(an invalid URL)", nil
	}
	if u.User != nil {
		secrets = append(secrets, u.User.Username())
		if p, ok := u.User.Password(); ok {
			basic := base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + p)) // net/http sends it so
			secrets = append(secrets, p, basic)
		}
		u.User = url.User(redacted)
	}
	u.RawQuery = r.query(u.RawQuery, &secrets)
	fragment := u.EscapedFragment()
	u.Fragment, u.RawFragment = "", ""
	shown = u.String()
	if fragment != "" { // an OAuth access_token travels there
		shown += "#" + r.query(fragment, &secrets)
	}
	return shown, secrets
}

// query hides the values of the secret-looking parameters of a raw query, keeping its order,
// separators and encoding; it adds what it hid (as written and decoded) to secrets.
func (r *redactor) query(raw string, secrets *[]string) string {
	if raw == "" {
		return ""
	}
	var b strings.Builder
	for raw != "" {
		part, sep := raw, ""
		if i := strings.IndexAny(raw, "&;"); i >= 0 {
			part, sep, raw = raw[:i], raw[i:i+1], raw[i+1:]
		} else {
			raw = ""
		}
		if name, value, ok := strings.Cut(part, "="); ok && value != "" && r.secretName(unescapeQuery(name)) {
			*secrets = append(*secrets, value, unescapeQuery(value))
			part = name + "=" + redacted
		}
		b.WriteString(part)
		b.WriteString(sep)
	}
	return b.String()
}

func unescapeQuery(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// err redacts the URL net/http puts in its errors.
func (r *redactor) err(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		shown, _ := r.url(ue.URL)
		return &url.Error{Op: ue.Op, URL: shown, Err: ue.Err}
	}
	return err
}

// excerpt is the start of an answer, as an error shows it: secrets hidden, on one line,
// non-printable bytes escaped, at most excerptMax bytes, with "…" when the answer goes on.
// head is what was read of it; more says whether the answer was longer. secrets are the
// request's own (from its URL), hidden where the answer echoes them.
func (r *redactor) excerpt(head []byte, more bool, secrets []string) string {
	secrets = append(secrets, r.secrets...)
	if more {
		head = cutEchoStart(head, secrets)
	}
	if t := bytes.TrimLeft(head, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		head = r.jsonFields(head)
	}
	head = r.params(head)
	for _, s := range secrets {
		if len(s) >= minSecret {
			head = bytes.ReplaceAll(head, []byte(s), []byte(redacted))
		}
	}
	return oneLine(head, excerptMax, more)
}

// cutEchoStart cuts off the end of head where it is the start of a secret: an echo the read
// limit cut short, which the search for whole secrets would miss.
func cutEchoStart(head []byte, secrets []string) []byte {
	for _, s := range secrets {
		if len(s) < minSecret {
			continue
		}
		for k := min(len(s)-1, len(head)); k > 0; k-- {
			if bytes.HasSuffix(head, []byte(s[:k])) {
				head = head[:len(head)-k]
				break
			}
		}
	}
	return head
}

// param is name=value in any text: a URL or form the answer echoes.
var param = regexp.MustCompile(`([A-Za-z0-9_.%\-\[\]]+)=([^&;\s"'<>\\,]+)`)

// params hides the values of secret-looking name=value pairs in text.
func (r *redactor) params(b []byte) []byte {
	return param.ReplaceAllFunc(b, func(m []byte) []byte {
		name, _, _ := bytes.Cut(m, []byte("="))
		if !r.secretName(unescapeQuery(string(name))) {
			return m
		}
		return append(append(name[:len(name):len(name)], '='), redacted...)
	})
}

// jsonFields replaces the value of every field whose name looks secret, at any depth, with
// "REDACTED", keeping the rest of the text as written. It reads JSON cut short, or not JSON
// at all, without failing: a value cut short is replaced to the end.
func (r *redactor) jsonFields(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		if b[i] != '"' {
			out = append(out, b[i])
			i++
			continue
		}
		end := stringEnd(b, i)
		out = append(out, b[i:end]...)
		j := skipSpace(b, end)
		if j >= len(b) || b[j] != ':' || !r.secretName(jsonName(b[i:end])) {
			i = end
			continue
		}
		j = skipSpace(b, j+1)
		out = append(out, b[end:j]...)
		out = append(out, `"`+redacted+`"`...)
		i = valueEnd(b, j)
	}
	return out
}

// stringEnd is the index after the JSON string starting at b[i] (the end of b when cut).
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// valueEnd is the index after the JSON value starting at b[i]: a string, an object or array
// with all it nests, or a scalar up to the next delimiter.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[j])) {
		j++
	}
	return j
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && strings.ContainsRune(" \t\r\n", rune(b[i])) {
		i++
	}
	return i
}

// jsonName is a quoted JSON string's text, escapes decoded where they can be.
func jsonName(q []byte) string {
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return strings.Trim(string(q), `"`)
	}
	return s
}

// oneLine writes b on one line for an error: runs of white space become one space, bytes that
// are not valid UTF-8 and ASCII control characters are written \xNN, other non-printable
// characters \uNNNN; it stops before limit bytes, and ends with "…" when it stopped or more
// follows.
func oneLine(b []byte, limit int, more bool) string {
	var s strings.Builder
	space := false
	for len(b) > 0 {
		c, n := utf8.DecodeRune(b)
		var piece string
		switch {
		case unicode.IsSpace(c):
			space = s.Len() > 0
			b = b[n:]
			continue
		case c == utf8.RuneError && n <= 1, c < utf8.RuneSelf && !unicode.IsPrint(c):
			piece = fmt.Sprintf(`\x%02x`, b[0])
		case !unicode.IsPrint(c):
			piece = fmt.Sprintf(`\u%04x`, c)
		default:
			piece = string(b[:n])
		}
		if space {
			piece = " " + piece
		}
		if s.Len()+len(piece) > limit {
			more = true
			break
		}
		s.WriteString(piece)
		space = false
		b = b[n:]
	}
	if more {
		s.WriteString("…")
	}
	return s.String()
}
