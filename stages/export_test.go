package stages

// SetDedupeFilterFirst makes the first part of a dedupe's key filters hold first keys, so that
// a test sees them grow and be built anew in a few thousand records.
func SetDedupeFilterFirst(st Stage, first int) { st.(*dedupe).filterFirst = first }
