package expr

import "strings"

// BodyReads gathers, as a pipeline's expressions are compiled, what they read of decoded
// bodies, so that a decode stage can keep the fields no one reads as written (record.Raw)
// instead of decoding and encoding them again. It is filled while the pipeline is built and
// only read once Done.
type BodyReads struct {
	fields map[string]bool // top-level fields read: msg.card.bin reads card
	whole  bool            // the body as a whole: msg, msg[name], keys(msg), "x" in msg
	maps   bool            // something needs bodies as maps: no lazy ones
	done   bool
}

// NewBodyReads starts gathering for one pipeline.
func NewBodyReads() *BodyReads { return &BodyReads{fields: map[string]bool{}} }

func (r *BodyReads) add(paths []string, fetchesOnly bool) {
	if r == nil {
		return
	}
	r.maps = r.maps || !fetchesOnly
	for _, p := range paths {
		if p == "msg" {
			r.whole = true
		} else if rest, ok := strings.CutPrefix(p, "msg."); ok {
			field, _, _ := strings.Cut(rest, ".")
			r.fields[field] = true
		}
	}
}

// ReadsWhole says something reads the body as a whole (a sink encoding it with a schema):
// no field may be kept as written.
func (r *BodyReads) ReadsWhole() {
	if r != nil {
		r.whole, r.maps = true, true
	}
}

// NeedsMaps says something takes bodies as map[string]any (a stage that merges into them,
// keeps them, or reads them in ways of its own): a decode stage makes no lazy ones.
func (r *BodyReads) NeedsMaps() {
	if r != nil {
		r.maps = true
	}
}

// Done ends the gathering: every expression has been compiled.
func (r *BodyReads) Done() { r.done = true }

// Unread reports that no expression reads top-level field name of a body. Until Done, and
// for a nil BodyReads (a stage built outside a pipeline), every field counts as read.
func (r *BodyReads) Unread(name string) bool {
	return r != nil && r.done && !r.whole && !r.fields[name]
}

// Lazy reports that a decode stage may make its object bodies lazy (record.Object): every
// expression reads them only by their fields' names, and every stage and sink takes them.
// Until Done, and for a nil BodyReads, it is false.
func (r *BodyReads) Lazy() bool { return r != nil && r.done && !r.maps }
