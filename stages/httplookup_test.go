package stages_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// service is an httptest server whose behaviour per path the test sets, counting calls.
type service struct {
	*httptest.Server
	calls atomic.Int64
	mode  atomic.Value // "ok", "404", "500", "429", "hang"
}

func newService(t *testing.T) *service {
	s := &service{}
	s.mode.Store("ok")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		switch s.mode.Load().(string) {
		case "404":
			http.NotFound(w, r)
		case "500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "429":
			w.Header().Set("Retry-After", "2")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case "hang":
			<-r.Context().Done() // answers only when the client gives up
		default:
			fmt.Fprintf(w, `{"score": 0.9, "account": %q}`, r.URL.Query().Get("a"))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func httpPipeline(t *testing.T, s *service, extra string) *pipeline.Pipeline {
	return build(t, `  - {name: d, type: decode, schema: {account: string}}
  - name: risk
    type: enrich
    key: msg.account
    http:
      url: '"`+s.URL+`/score?a=" + msg.account'
      timeout: 100ms
`+extra+`    into: risk
`)
}

func TestHTTPLookup(t *testing.T) {
	s := newService(t)
	p := httpPipeline(t, s, "      cache: {size: 100, ttl: 1m, negative_ttl: 1m}\n")
	outs, err := run(t, p, `{"account": "a1"}`, "d", "risk")
	if err != nil {
		t.Fatal(err)
	}
	if risk := outs[0].Rec.Msg.(map[string]any)["risk"].(map[string]any); risk["score"] != 0.9 || risk["account"] != "a1" {
		t.Fatalf("risk = %v", risk)
	}
	if _, err := run(t, p, `{"account": "a1"}`, "d", "risk"); err != nil || s.calls.Load() != 1 {
		t.Fatalf("a cached key was looked up again: %d calls, %v", s.calls.Load(), err)
	}
	s.mode.Store("404")
	outs, err = run(t, p, `{"account": "nobody"}`, "d", "risk")
	if err != nil || outs[0].Rec.Msg.(map[string]any)["risk"] != nil {
		t.Fatalf("404 should read as missing: %v %v", outs, err)
	}
	before := s.calls.Load()
	if _, err := run(t, p, `{"account": "nobody"}`, "d", "risk"); err != nil || s.calls.Load() != before {
		t.Fatalf("a cached 404 was looked up again")
	}
	c := p.StageByName("risk").Impl.(stages.Counting).Counters()
	if c["cache_hits"] != 2 || c["cache_misses"] != 2 {
		t.Errorf("counters %v, want 2 hits and 2 misses", c)
	}
}

func TestHTTPLookupErrorClasses(t *testing.T) {
	s := newService(t)
	p := httpPipeline(t, s, "")
	cases := []struct {
		mode, class string
		retryAfter  time.Duration
	}{
		{"500", "http_5xx", 0},
		{"429", "http_429", 2 * time.Second},
		{"hang", "timeout", 0},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			s.mode.Store(c.mode)
			_, err := run(t, p, `{"account": "x"}`, "d", "risk")
			var he *stages.HTTPError
			if !errors.As(err, &he) || he.Class() != c.class || he.RetryAfter != c.retryAfter {
				t.Fatalf("got %v (class %q), want class %s", err, classOf(err), c.class)
			}
		})
	}
	s.Close()
	_, err := run(t, p, `{"account": "x"}`, "d", "risk")
	if classOf(err) != "connection" {
		t.Fatalf("a closed server: %v (class %q)", err, classOf(err))
	}
}

func classOf(err error) string {
	var he *stages.HTTPError
	if errors.As(err, &he) {
		return he.Class()
	}
	return ""
}

// The breaker opens after the configured consecutive failures, fails fast while open, lets
// one probe through after the cooldown and closes when it succeeds.
func TestHTTPLookupBreaker(t *testing.T) {
	s := newService(t)
	p := httpPipeline(t, s, "      breaker: {failures: 3, cooldown: 50ms}\n")
	s.mode.Store("500")
	for i := 0; i < 3; i++ {
		if _, err := run(t, p, `{"account": "x"}`, "d", "risk"); classOf(err) != "http_5xx" {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err := run(t, p, `{"account": "x"}`, "d", "risk")
	if classOf(err) != "connection" || s.calls.Load() != 3 {
		t.Fatalf("the open breaker let a call through (%d calls): %v", s.calls.Load(), err)
	}
	if state := p.StageByName("risk").Impl.(stages.Counting).Counters()["breaker_state"]; state != 2 {
		t.Errorf("breaker_state = %d, want 2 (open)", state)
	}
	s.mode.Store("ok")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := run(t, p, `{"account": "x"}`, "d", "risk"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the breaker did not close after the cooldown")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := run(t, p, `{"account": "y"}`, "d", "risk"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}
