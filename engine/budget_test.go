package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/atleastonce"
	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// max_pending_bytes bounds the bytes read and not yet done across every partition: behind a
// closed sink the source stops at the budget (give or take one record per partition, a record
// weighing its bytes and atleastonce.RecordOverhead), and once the sink opens every record arrives.
func TestKafkaPendingBytesBudget(t *testing.T) {
	const perTopic, budget = 300, 32 << 10
	pad := strings.Repeat("x", 1000)
	topics := []string{"a", "b", "c"}
	b := startBroker(t, 1, topics...)
	size := 0
	for _, topic := range topics {
		recs := make([]devbroker.Record, perTopic)
		for i := range recs {
			recs[i] = devbroker.Record{Value: []byte(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad))}
			size = len(recs[i].Value)
		}
		if err := b.Produce(context.Background(), topic, recs, kgo.ProducerBatchMaxBytes(4096)); err != nil {
			t.Fatal(err)
		}
	}
	gate := make(chan struct{})
	out := gatedSinks(gate)
	r := runLogged(t, b, "[a, b, c]", fmt.Sprintf("max_pending_bytes: %d, fetch_default_bytes: 4KiB, channel_buffer_size: 16", budget), out.Open)
	waitFor(t, 30*time.Second, "the source to spend its budget behind the closed sink", func() bool {
		return r.src.Stats().PendingBytes >= budget
	})
	if pending := r.src.Stats().Pending; pending >= 3*perTopic {
		t.Fatalf("all %d records were read: the budget held nothing back", pending)
	}
	close(gate)
	r.finish(t, topics...)
	weight := size + atleastonce.RecordOverhead
	if bound, peak := int64(budget+len(topics)*weight), r.src.Stats().PeakPendingBytes; peak > bound || peak < budget {
		t.Errorf("peak pending bytes %d, want between the budget %d and %d (one record more per partition)", peak, budget, bound)
	}
	if got := len(out.Records("o")); got != 3*perTopic {
		t.Errorf("%d of %d records reached the sink", got, 3*perTopic)
	}
	if used := r.src.Stats().PendingBytes; used != 0 {
		t.Errorf("%d bytes still counted after every record is done", used)
	}
}
