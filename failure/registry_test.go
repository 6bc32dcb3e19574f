package failure

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// answer is a registry request that failed with status and code (0, 0: no answer).
type answer struct{ status, code int }

func (a answer) Error() string                      { return fmt.Sprintf("registry: HTTP %d (%d)", a.status, a.code) }
func (a answer) RegistryAnswer() (status, code int) { return a.status, a.code }

type badBody struct{}

func (badBody) Error() string { return "avro: short buffer" }
func (badBody) RecordFault()  {}

func TestJudgeRegistry(t *testing.T) {
	cases := []struct {
		name string
		op   Op
		err  error
		want Outcome
	}{
		{"decode: the registry cannot be reached: wait", Process, answer{0, 0}, Wait},
		{"decode: a wrapped unreachable registry: wait", Process, fmt.Errorf("decode avro: %w", answer{0, 0}), Wait},
		{"decode: the registry fails on its side: wait", Process, answer{503, 50001}, Wait},
		{"decode: the registry throttles: wait", Process, answer{429, 0}, Wait},
		{"decode: an unknown schema id is the record's", Process, answer{404, 40403}, DeadLetter},
		{"decode: wrong credentials stop", Process, answer{401, 0}, Stop},
		{"decode: no rights stop", Process, answer{403, 0}, Stop},
		{"decode: bytes that do not decode are the record's", Process, badBody{}, DeadLetter},
		{"encode: the registry cannot be reached: wait", Produce, answer{0, 0}, Wait},
		{"encode: the registry fails: wait", ProduceComputed, answer{500, 0}, Wait},
		{"encode: no such subject stops", Produce, answer{404, 40401}, Stop},
		{"encode: no such version stops", Produce, answer{404, 40402}, Stop},
		{"encode: a schema refused as incompatible stops", Produce, answer{409, 409}, Stop},
		{"encode: a schema refused as invalid stops", Produce, answer{422, 42201}, Stop},
		{"encode: another 4xx stops", Produce, answer{400, 0}, Stop},
		{"encode: a value that does not fit is the record's", Produce, badBody{}, DeadLetter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Judge(c.op, "stage parse", "", c.err).Outcome; got != c.want {
				t.Errorf("Judge(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestRegistryReasonGivesTheLikelyCause(t *testing.T) {
	r := Judge(Process, "stage parse", "", fmt.Errorf("decode avro: %w", answer{404, 40403})).Reason()
	if want := "(the record names a schema id this registry does not have)"; !strings.Contains(r, want) {
		t.Errorf("reason %q does not say %q", r, want)
	}
	if !errors.As(Judge(Process, "", "", answer{0, 0}), new(RegistryAnswer)) {
		t.Error("the registry's answer does not unwrap")
	}
}
