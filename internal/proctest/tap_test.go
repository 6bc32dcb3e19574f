package proctest

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// tap --follow prints what is there, then what comes, until Ctrl-C, and exits 0.
func TestTapFollow(t *testing.T) {
	b := newBroker(t)
	for _, topic := range []string{"orders", "orders-out", "orders-big", "orders-dlq"} {
		if err := b.CreateTopic(topic, 3); err != nil {
			t.Fatal(err)
		}
	}
	produce := func(key string) {
		t.Helper()
		rec := devbroker.Record{Key: []byte(key), Value: []byte(`{"bad": true}`), Headers: map[string]string{"pythia.stage": "parse"}, Timestamp: time.Now()}
		if err := b.Produce(context.Background(), "orders-dlq", []devbroker.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	produce("before")
	p := start(t, b, "tap", "tap", "../../pipelines/orders.yaml", "dlq", "--follow")
	testproc.WaitFor(t, 30*time.Second, "the record already there", func() bool { return strings.Contains(p.Output(), "key=before") })
	produce("after")
	testproc.WaitFor(t, 30*time.Second, "the record that came", func() bool { return strings.Contains(p.Output(), "key=after") })
	p.Signal(t, syscall.SIGINT)
	if code := p.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.Output())
	}
}
