package stages_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// fakeClock records the waits asked of it and lets them pass at once.
type fakeClock struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

// flaky answers status for the first n calls, then 200; it counts calls.
func flaky(t *testing.T, n int64, status int, header map[string]string) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= n {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			return
		}
		w.Write([]byte(`{"ok": true}`))
	}))
	t.Cleanup(s.Close)
	return s, &calls
}

// retryPipeline retries an HTTP enrich with the breaker off: a lone record failing every call
// would otherwise be an outage, and wait (breaker_test.go).
func retryPipeline(t *testing.T, url, retryOn string) (*fakeClock, stages.Stage) {
	p := build(t, `  - {name: d, type: decode, schema: {id: string}}
  - name: r
    type: retry
    attempts: 4
    backoff: {initial: 100ms, max: 1s, multiplier: 2, jitter: 0}
    retry_on: `+retryOn+`
    stage: {type: enrich, http: {url: '"`+url+`/x?id=" + msg.id', timeout: 1s, breaker: {failures: 0}}, into: got}
`)
	clock := &fakeClock{}
	st := p.StageByName("r").Impl
	st.(interface{ SetClock(stages.Clock) }).SetClock(clock)
	return clock, st
}

func TestRetryBackoffAndSuccess(t *testing.T) {
	s, calls := flaky(t, 3, http.StatusServiceUnavailable, nil)
	clock, st := retryPipeline(t, s.URL, "[http_5xx]")
	rec := decoded(t, `{"id": "a"}`)
	outs, err := st.Process(t.Context(), rec, nil)
	if err != nil || len(outs) != 1 || calls.Load() != 4 {
		t.Fatalf("outs %d err %v calls %d", len(outs), err, calls.Load())
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	if len(clock.waits) != 3 || clock.waits[0] != want[0] || clock.waits[1] != want[1] || clock.waits[2] != want[2] {
		t.Errorf("waits %v, want %v", clock.waits, want)
	}
}

func TestRetryGivesUp(t *testing.T) {
	cases := []struct {
		name         string
		status       int
		header       map[string]string
		retryOn      string
		calls, tries int64
		exhausted    bool
		minFirstWait time.Duration
	}{
		{"exhausted", http.StatusBadGateway, nil, "[http_5xx]", 4, 4, true, 100 * time.Millisecond},
		{"not retryable", http.StatusBadRequest, nil, "[http_5xx]", 1, 1, false, 0},
		{"class not listed", http.StatusBadGateway, nil, "[timeout]", 1, 1, false, 0},
		{"429 honours Retry-After", http.StatusTooManyRequests, map[string]string{"Retry-After": "3"}, "[http_429]", 4, 4, true, 3 * time.Second},
		{"any", http.StatusBadRequest, nil, "[any]", 4, 4, true, 100 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, calls := flaky(t, 100, c.status, c.header)
			clock, st := retryPipeline(t, s.URL, c.retryOn)
			_, err := st.Process(t.Context(), decoded(t, `{"id": "a"}`), nil)
			var re *stages.RetryError
			if !errors.As(err, &re) || int64(re.Attempts()) != c.tries || re.Exhausted != c.exhausted || calls.Load() != c.calls {
				t.Fatalf("err %v, calls %d; want %d tries (exhausted %v)", err, calls.Load(), c.tries, c.exhausted)
			}
			if c.minFirstWait > 0 && (len(clock.waits) == 0 || clock.waits[0] < c.minFirstWait) {
				t.Errorf("waits %v, want the first at least %v", clock.waits, c.minFirstWait)
			}
		})
	}
}

// decoded is a record whose body has been through a JSON decode.
func decoded(t *testing.T, body string) *record.Record {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	return &record.Record{Value: []byte(body), Msg: m, Decoded: true}
}
