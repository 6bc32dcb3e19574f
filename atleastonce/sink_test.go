package atleastonce

import (
	"testing"

	"github.com/pythia-pipe/pythia-pipe/sinks"
)

// Every number a Kafka sink reports is described by its type, so that the metrics export it.
func TestSinkNumbersDescribed(t *testing.T) {
	described := map[string]bool{}
	kafka := sinks.Registry()["kafka"]
	for _, c := range kafka.Counters {
		described[c.Key] = true
	}
	s := &Sink{guard: newGuard(true)}
	for key := range s.Counters() {
		if !described[key] {
			t.Errorf("the Kafka sink reports %q, which its type does not describe", key)
		}
	}
	if len(s.Counters()) != len(kafka.Counters) {
		t.Errorf("the kafka type describes %d numbers, the sink reports %d", len(kafka.Counters), len(s.Counters()))
	}
}
