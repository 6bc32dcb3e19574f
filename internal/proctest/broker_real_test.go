//go:build e2e

package proctest

import (
	"testing"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
)

// newBroker starts a real Apache Kafka broker (make e2e), fresh for each test.
func newBroker(t testing.TB) *devbroker.Broker {
	t.Helper()
	b, err := devbroker.StartReal(realkafka.Options{Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Kafka started in %v", b.Real.Started)
	t.Cleanup(b.Close)
	return b
}
