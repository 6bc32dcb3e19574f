package stages_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

func stageCounters(p *pipeline.Pipeline, name string) map[string]int64 {
	return p.StageByName(name).Impl.(stages.Counting).Counters()
}

// A 4xx, a 404 or an answer that is not JSON is the record's fault: the service answered, so
// however many there are, the breaker stays closed and the records after them pass.
func TestBreakerIgnoresRecordFaults(t *testing.T) {
	cases := []struct {
		mode   string
		failed bool // the record fails (404 is "missing", not a failure)
	}{
		{"400", true},
		{"404", false},
		{"notjson", true},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			s := newService(t)
			p := httpPipeline(t, s, "      breaker: {failures: 2, cooldown: 10s}\n")
			s.mode.Store(c.mode)
			for i := range 5 {
				_, err := run(t, p, fmt.Sprintf(`{"account": "r%d"}`, i), "d", "risk")
				if (err != nil) != c.failed || classOf(err) != "" {
					t.Fatalf("record %d: %v (class %q)", i, err, classOf(err))
				}
			}
			s.mode.Store("ok")
			if _, err := run(t, p, `{"account": "good"}`, "d", "risk"); err != nil {
				t.Fatalf("a good record after record faults: %v", err)
			}
			if c := stageCounters(p, "risk"); c["outages"] != 0 || c["breaker_state"] != 0 {
				t.Fatalf("record faults opened the breaker: %v", c)
			}
		})
	}
}

// When the service fails every call, records wait (no error, no attempt) while probes go
// out, and all pass once it answers again.
func TestOutageWaits(t *testing.T) {
	s := newService(t)
	p := httpPipeline(t, s, "      breaker: {failures: 3, cooldown: 100ms}\n")
	s.mode.Store("500")
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		go func() {
			outs, err := run(t, p, fmt.Sprintf(`{"account": "a%d"}`, i), "d", "risk")
			if err == nil && outs[0].Rec.Msg.(map[string]any)["risk"] == nil {
				err = errors.New("passed without its enrichment")
			}
			errs <- err
		}()
	}
	testproc.WaitFor(t, 10*time.Second, "every record waiting on the open breaker", func() bool {
		c := stageCounters(p, "risk")
		return c["waiting"] == n && c["breaker_state"] != 0
	})
	probes := s.calls.Load()
	testproc.WaitFor(t, 10*time.Second, "a probe while the service is down", func() bool { return s.calls.Load() > probes })
	select {
	case err := <-errs:
		t.Fatalf("a record finished during the outage: %v", err)
	default:
	}
	s.mode.Store("ok")
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("after the outage: %v", err)
		}
	}
	if c := stageCounters(p, "risk"); c["outages"] != 1 || c["waiting"] != 0 || c["breaker_state"] != 0 {
		t.Fatalf("counters after the outage: %v", c)
	}
}

// A record the service fails while it answers the others is the record's own failure: it
// comes back as an error (to retry or the DLQ) and opens no breaker.
func TestOwnFailureIsTheRecords(t *testing.T) {
	s := newService(t)
	p := httpPipeline(t, s, "      breaker: {failures: 3, cooldown: 10s}\n")
	s.mode.Store("bad500")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // other records keep the service busy answering
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := run(t, p, fmt.Sprintf(`{"account": "g%d"}`, i), "d", "risk"); err != nil {
				t.Errorf("a good record: %v", err)
				return
			}
		}
	})
	_, err := run(t, p, `{"account": "bad"}`, "d", "risk")
	close(stop)
	wg.Wait()
	if classOf(err) != "http_5xx" {
		t.Fatalf("the bad record: %v, want its 500", err)
	}
	if c := stageCounters(p, "risk"); c["outages"] != 0 {
		t.Fatalf("one record's failures opened the breaker: %v", c)
	}
}

// An outage longer than max_outage stops the pipeline: never the DLQ.
func TestMaxOutageStops(t *testing.T) {
	s := newService(t)
	p := httpPipeline(t, s, "      breaker: {failures: 2, cooldown: 20ms, max_outage: 200ms}\n")
	s.mode.Store("500")
	_, err := run(t, p, `{"account": "a"}`, "d", "risk")
	var oe *stages.OutageError
	if !errors.As(err, &oe) || failure.Judge(failure.Process, "stage risk", "", err).Outcome != failure.Stop {
		t.Fatalf("got %v, want an outage that stops the pipeline", err)
	}
	if !strings.Contains(err.Error(), "max_outage") || !strings.Contains(err.Error(), "answered 500") {
		t.Errorf("the message should name max_outage and the last failure: %v", err)
	}
}
