package failure

import "fmt"

// RegistryAnswer is a schema registry request that failed, with what the registry answered:
// the HTTP status and its error code, both 0 when no answer came (the registry refused the
// connection, did not answer in time, or its name does not resolve).
type RegistryAnswer interface {
	error
	RegistryAnswer() (status, code int)
}

// RegistryRow is one line of the registry's part of the table: an answer and what it means
// while decoding a record (a schema by the id the record carries) and while encoding one
// (the schema of the subject the file names).
type RegistryRow struct {
	Answer         string
	Status, Code   int // Status 0: no answer; Code 0: any code
	Decode, Encode Outcome
	Hint           string
}

// registryTable is every answer of a registry and what it means; the first row that matches
// an answer decides.
var registryTable = []RegistryRow{
	{"no answer (connection refused, timeout, unknown host)", 0, 0, Wait, Wait, "is the registry up? records wait until it answers"},
	{"429 too many requests", 429, 0, Wait, Wait, "the registry throttles this client"},
	{"5xx", 500, 0, Wait, Wait, "the registry failed on its side"},
	{"401 unauthorized", 401, 0, Stop, Stop, "wrong registry credentials?"},
	{"403 forbidden", 403, 0, Stop, Stop, "may this user read (or register) the subject? check its rights"},
	{"404 schema not found (40403)", 404, 40403, DeadLetter, Stop, "the record names a schema id this registry does not have"},
	{"404 subject not found (40401)", 404, 40401, DeadLetter, Stop, "does the subject exist? register its schema, or set auto_register: true"},
	{"404 version not found (40402)", 404, 40402, DeadLetter, Stop, "the subject has no such version"},
	{"404 other", 404, 0, DeadLetter, Stop, "is the URL the registry's API root? (Apicurio: /apis/ccompat/v7)"},
	{"409 incompatible schema", 409, 0, DeadLetter, Stop, "the registry refuses the schema as incompatible with the subject's versions"},
	{"422 invalid schema", 422, 0, DeadLetter, Stop, "the registry refuses the schema as invalid"},
	{"other 4xx", 400, 0, DeadLetter, Stop, "the registry refused the request"},
}

// RegistryRows is the registry's part of the table, for the reference documentation.
func RegistryRows() []RegistryRow { return append([]RegistryRow(nil), registryTable...) }

// registryRule is the row that decides an answer: an exact status first, then its class
// (5xx, 4xx).
func registryRule(status, code int) RegistryRow {
	for _, r := range registryTable {
		if r.Status == status && (r.Code == 0 || r.Code == code) {
			return r
		}
	}
	for _, r := range registryTable {
		if r.Status != 0 && status/100 == r.Status/100 && r.Status%100 == 0 {
			return r
		}
	}
	return RegistryRow{Answer: fmt.Sprintf("HTTP %d", status), Decode: DeadLetter, Encode: Stop}
}

// registryOutcome is what a registry's answer means for op: decoding is a stage's work on a
// record (Process), encoding a sink's (Produce, ProduceComputed).
func registryOutcome(op Op, ra RegistryAnswer) Outcome {
	r := registryRule(ra.RegistryAnswer())
	if op == Process || op == Consume {
		return r.Decode
	}
	return r.Encode
}

// RegistryHint is the likely cause of a registry's answer.
func RegistryHint(ra RegistryAnswer) string { return registryRule(ra.RegistryAnswer()).Hint }
