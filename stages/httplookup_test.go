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

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// service is an httptest server whose behaviour per path the test sets, counting calls.
type service struct {
	*httptest.Server
	calls atomic.Int64
	mode  atomic.Value // "ok", "404", "400", "echo" (400 quoting the request), "notjson", "500", "429", "hang", "bad500" (500 for account "bad")
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
		case mode == "echo":
			http.Error(w, "bad request "+r.URL.RequestURI()+" with "+r.Header.Get("Authorization")+" and "+r.Header.Get("X-Api-Key"), http.StatusBadRequest)
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
      timeout: 1s
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

// Secrets in a URL (user info, the values of secret-looking parameters) and in headers never
// reach an error, hence a log or the DLQ, even when the service quotes them; the rest of the
// URL does, to say which call failed.
func TestHTTPErrorsRedactSecrets(t *testing.T) {
	s := newService(t)
	secretURL := strings.Replace(s.URL, "http://", "http://user:PASSWORD1@", 1) + "/score?api_key=TOPSECRET123&a="
	p := build(t, `  - {name: d, type: decode, schema: {account: string}}
  - name: risk
    type: enrich
    http: {url: '"`+secretURL+`" + msg.account', headers: {X-Api-Key: HEADERKEY9}, timeout: 1s, breaker: {failures: 0}}
    into: risk
`)
	s.mode.Store("500")
	_, answered := run(t, p, `{"account": "acc42"}`, "d", "risk")
	s.mode.Store("echo")
	_, echoed := run(t, p, `{"account": "acc42"}`, "d", "risk")
	s.Close()
	_, refused := run(t, p, `{"account": "acc42"}`, "d", "risk")
	for _, err := range []error{answered, echoed, refused} {
		if err == nil {
			t.Fatal("want an error")
		}
		msg := err.Error()
		for _, secret := range []string{"PASSWORD1", "dXNlcjpQQVNTV09SRDE", "TOPSECRET123", "HEADERKEY9"} {
			if strings.Contains(msg, secret) {
				t.Errorf("%q leaks %s", msg, secret)
			}
		}
		if !strings.Contains(msg, "REDACTED@") || !strings.Contains(msg, "/score?api_key=REDACTED&a=acc42") {
			t.Errorf("%q should still say which call failed", msg)
		}
	}
	if want := "bad request /score?api_key=REDACTED&a=acc42 with Basic REDACTED and REDACTED"; !strings.HasSuffix(echoed.Error(), want) {
		t.Errorf("got  %s\nwant it to end in %s", echoed, want)
	}
}

// A DLQ reason says what the service answered: its status and the start of its body.
func TestHTTPErrorQuotesTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"amount over limit","limit":10,"session":{"id":"s-%s"}}`, r.URL.Query().Get("token"))
	}))
	t.Cleanup(srv.Close)
	p := build(t, `  - {name: d, type: decode, schema: {account: int, amount: float}}
  - name: risk
    type: enrich
    http:
      url: '"`+srv.URL+`/score?account=" + string(msg.account) + "&amount=" + string(msg.amount) + "&token=T0KEN77&iban=DE89"'
      redact: [IBAN]
    into: risk
`)
	_, err := run(t, p, `{"account": 42, "amount": 12.5}`, "d", "risk")
	got := failure.Judge(failure.Process, "stage risk", "", err).Reason()
	want := "enrich http: " + srv.URL + `/score?account=42&amount=12.5&token=REDACTED&iban=REDACTED answered 400: {"error":"amount over limit","limit":10,"session":"REDACTED"}`
	if got != want {
		t.Fatalf("the DLQ reason reads\n%s\nwant\n%s", got, want)
	}
	if classOf(err) != "" {
		t.Errorf("a 400 is of class %q, want none", classOf(err))
	}
}

// An answer that is not JSON is quoted too.
func TestHTTPErrorQuotesAnAnswerNotJSON(t *testing.T) {
	s := newService(t)
	p := httpPipeline(t, s, "")
	s.mode.Store("notjson")
	_, err := run(t, p, `{"account": "a1"}`, "d", "risk")
	want := "enrich http: " + s.URL + "/score?a=a1: the answer is not JSON: invalid character '<' looking for beginning of value: <html>"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

// endless is an answer's body that never ends, counting what was read of it.
type endless struct{ read atomic.Int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.read.Add(int64(len(p)))
	return len(p), nil
}
func (e *endless) Close() error { return nil }

// Of a failed answer, however large, only the start is read.
func TestHTTPErrorReadsTheStartOfTheAnswer(t *testing.T) {
	body := &endless{}
	rt := roundTripper(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{}, Body: body, Request: r}, nil
	})
	src := "version: 1\nname: t\nsource: {type: kafka, topics: [in]}\nstages:\n" +
		"  - {name: risk, type: enrich, http: {url: '\"http://svc/score\"', breaker: {failures: 0}}, into: risk}\n" +
		"sinks: [{name: a, type: kafka, topic: a}]\n"
	p, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{HTTP: rt, BaseDir: t.TempDir()})
	if len(diags) > 0 {
		t.Fatal(diags.Err())
	}
	_, err := run(t, p, `{}`, "risk")
	if want := "enrich http: http://svc/score answered 502: " + strings.Repeat("x", 200) + "…"; err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	if n := body.read.Load(); n > 4<<10+1 {
		t.Errorf("read %d bytes of the answer, want at most 4 KiB", n)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
