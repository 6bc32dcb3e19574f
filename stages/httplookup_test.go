package stages_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	mode  atomic.Value // "ok", "404", "400", "notjson", "500", "429", "hang", "bad500" (500 for account "bad")
	seen  atomic.Value // the last request: method, query a, body
}

func newService(t *testing.T) *service {
	s := &service{}
	s.mode.Store("ok")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		s.seen.Store(r.Method + " " + r.URL.Query().Get("a") + " " + string(body))
		switch mode := s.mode.Load().(string); {
		case mode == "404":
			http.NotFound(w, r)
		case mode == "400":
			http.Error(w, "bad request", http.StatusBadRequest)
		case mode == "notjson":
			fmt.Fprint(w, "<html>")
		case mode == "500", mode == "bad500" && r.URL.Query().Get("a") == "bad":
			http.Error(w, "boom", http.StatusInternalServerError)
		case mode == "429":
			w.Header().Set("Retry-After", "2")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case mode == "hang":
			<-r.Context().Done() // answers only when the client gives up
		default:
			fmt.Fprintf(w, `{"score": 0.9, "account": %q, "body": %q}`, r.URL.Query().Get("a"), body)
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
	p := httpPipeline(t, s, "      breaker: {failures: 0}\n") // every failure is the record's: no outage to wait out
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

// A POST's answers are cached by method, URL and body: records with different bodies get
// their own answers.
func TestHTTPLookupCacheKeyIsTheRequest(t *testing.T) {
	s := newService(t)
	p := build(t, `  - {name: d, type: decode, schema: {account: string, amount: int}}
  - name: risk
    type: enrich
    http:
      url: '"`+s.URL+`/score?a=" + urlquery(msg.account)'
      method: POST
      body: '{"amount": msg.amount}'
    into: risk
`)
	for _, amount := range []string{"10", "5000", "10"} {
		outs, err := run(t, p, `{"account": "acc", "amount": `+amount+`}`, "d", "risk")
		if err != nil {
			t.Fatal(err)
		}
		if got := outs[0].Rec.Msg.(map[string]any)["risk"].(map[string]any)["body"]; got != `{"amount":`+amount+`}` {
			t.Fatalf("amount %s got the answer for %v", amount, got)
		}
	}
	if s.calls.Load() != 2 {
		t.Fatalf("%d calls, want 2 (the third request repeats the first)", s.calls.Load())
	}
}

// The cache is bounded in bytes: answers past max_bytes push out the least recently used.
func TestHTTPLookupCacheBytes(t *testing.T) {
	big := strings.Repeat("x", 1000)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fmt.Fprintf(w, `{"pad": %q}`, big)
	}))
	t.Cleanup(srv.Close)
	p := build(t, `  - {name: d, type: decode, schema: {account: string}}
  - name: risk
    type: enrich
    http: {url: '"`+srv.URL+`/?a=" + msg.account', cache: {size: 1000, max_bytes: 3KiB}}
    into: risk
`)
	for i := range 10 {
		if _, err := run(t, p, fmt.Sprintf(`{"account": "a%d"}`, i), "d", "risk"); err != nil {
			t.Fatal(err)
		}
		if b := stageCounters(p, "risk")["cache_bytes"]; b > 3<<10 || b <= 0 {
			t.Fatalf("cache_bytes %d after %d answers, want (0, 3KiB]", b, i+1)
		}
	}
	before := calls.Load()
	if _, err := run(t, p, `{"account": "a9"}`, "d", "risk"); err != nil || calls.Load() != before {
		t.Fatalf("the newest answer should be cached (%d calls, %v)", calls.Load()-before, err)
	}
	if _, err := run(t, p, `{"account": "a0"}`, "d", "risk"); err != nil || calls.Load() != before+1 {
		t.Fatalf("the oldest answer should have been evicted (%d calls, %v)", calls.Load()-before, err)
	}
}

// Record data is escaped where it enters a URL.
func TestURLEscaping(t *testing.T) {
	var paths, queries sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.EscapedPath(), true)
		queries.Store(r.URL.Query().Get("a")+"|"+r.URL.Query().Get("y"), true)
		fmt.Fprint(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	p := build(t, `  - {name: d, type: decode, schema: {account: string}}
  - name: risk
    type: enrich
    http: {url: '"`+srv.URL+`/acct/" + urlpath(msg.account) + "?a=" + urlquery(msg.account)'}
    into: risk
`)
	if _, err := run(t, p, `{"account": "acc-2 x&y=1/é"}`, "d", "risk"); err != nil {
		t.Fatal(err)
	}
	if _, ok := queries.Load("acc-2 x&y=1/é|"); !ok {
		t.Errorf("the query arrived as %v", keys(&queries))
	}
	if _, ok := paths.Load("/acct/acc-2%20x&y=1%2F%C3%A9"); !ok {
		t.Errorf("the path arrived as %v", keys(&paths))
	}
}

func keys(m *sync.Map) []any {
	var out []any
	m.Range(func(k, _ any) bool { out = append(out, k); return true })
	return out
}

// Secrets in a URL (user info, query values) never reach an error, hence a log or the DLQ.
func TestHTTPErrorsRedactSecrets(t *testing.T) {
	s := newService(t)
	secretURL := strings.Replace(s.URL, "http://", "http://user:PASSWORD1@", 1) + "/score?api_key=TOPSECRET123&a="
	p := build(t, `  - {name: d, type: decode, schema: {account: string}}
  - name: risk
    type: enrich
    http: {url: '"`+secretURL+`" + msg.account', timeout: 100ms, breaker: {failures: 0}}
    into: risk
`)
	s.mode.Store("500")
	_, answered := run(t, p, `{"account": "SECRETACCOUNT"}`, "d", "risk")
	s.Close()
	_, refused := run(t, p, `{"account": "SECRETACCOUNT"}`, "d", "risk")
	for _, err := range []error{answered, refused} {
		if err == nil {
			t.Fatal("want an error")
		}
		msg := err.Error()
		for _, secret := range []string{"PASSWORD1", "TOPSECRET123", "SECRETACCOUNT"} {
			if strings.Contains(msg, secret) {
				t.Errorf("%q leaks %s", msg, secret)
			}
		}
		if !strings.Contains(msg, "api_key=REDACTED") {
			t.Errorf("%q should still say which call failed", msg)
		}
	}
}
