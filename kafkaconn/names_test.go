package kafkaconn

import (
	"strings"
	"testing"
)

func TestTopicNameProblem(t *testing.T) {
	for name, want := range map[string]string{
		"orders":                 "",
		"orders.v2_EU-1":         "",
		strings.Repeat("a", 249): "",
		"":                       "cannot be empty",
		"..":                     "cannot be named . or ..",
		strings.Repeat("a", 250): "at most 249 characters",
		"orders/eu":              `topic "orders/eu" has a character Kafka does not allow`,
	} {
		got := TopicNameProblem(name)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("TopicNameProblem(%.20q) = %q, want %q", name, got, want)
		}
	}
}
