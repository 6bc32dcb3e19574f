//go:build !e2e

package proctest

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// newBroker starts the in-process broker; with the e2e build tag the same tests run on a
// real Apache Kafka instead.
func newBroker(t testing.TB) *devbroker.Broker {
	t.Helper()
	b, err := devbroker.Start(kfake.GroupMinSessionTimeout(500 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}
