package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/sony/gobreaker/v2"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// httpLookup calls a service per record (through an LRU cache with TTL, negative caching of
// "not found", a concurrency limit and a circuit breaker) and decodes the JSON answer.
type httpLookup struct {
	url, body *expr.Program
	method    string
	headers   map[string]string
	client    *http.Client
	slots     chan struct{}
	cache     *lru.Cache[string, cached]     // nil without a cache
	ttl       time.Duration                  // how long an answer is kept
	negTTL    time.Duration                  // how long a "not found" is kept
	breaker   *gobreaker.CircuitBreaker[any] // nil when disabled

	hits, misses atomic.Int64
}

// cached is an answer (or a "not found") and when it expires. Expiry is checked when the
// entry is read, so the cache needs no goroutine of its own.
type cached struct {
	value   any
	missing bool
	expires time.Time
}

// HTTPError is a lookup that failed; Class says which retry_on class it belongs to.
type HTTPError struct {
	URL        string
	Status     int           // 0 when no answer came
	RetryAfter time.Duration // from a 429's Retry-After header
	Err        error
}

func (e *HTTPError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("enrich http: %s answered %d", e.URL, e.Status)
	}
	return fmt.Sprintf("enrich http: %s: %v", e.URL, e.Err)
}
func (e *HTTPError) Unwrap() error { return e.Err }

// Class is the retry_on class of a lookup failure: timeout, connection, http_5xx, http_429,
// or "" for failures that retrying will not cure (a 4xx, an answer that is not JSON).
func (e *HTTPError) Class() string {
	var ne net.Error
	switch {
	case e.Status == http.StatusTooManyRequests:
		return "http_429"
	case e.Status >= 500:
		return "http_5xx"
	case e.Status != 0:
		return ""
	case errors.Is(e.Err, context.DeadlineExceeded) || (errors.As(e.Err, &ne) && ne.Timeout()):
		return "timeout"
	case errors.Is(e.Err, gobreaker.ErrOpenState) || errors.Is(e.Err, gobreaker.ErrTooManyRequests):
		return "connection" // the breaker is open: the service is down as far as we know
	}
	var oe *net.OpError
	if errors.As(e.Err, &oe) {
		return "connection"
	}
	return ""
}

// errNotFound marks a 404: the lookup found nothing (not a failure).
var errNotFound = errors.New("not found")

func newHTTPLookup(c *Config, h *spec.Value, env expr.Env) *httpLookup {
	concurrency := int(h.Int("concurrency"))
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost = concurrency, concurrency // keep a connection per call in flight
	l := &httpLookup{method: h.String("method"), headers: map[string]string{},
		client: &http.Client{Timeout: h.Duration("timeout"), Transport: transport}, slots: make(chan struct{}, concurrency)}
	l.url = expr.Compile(h.Get("url"), env, expr.WantString, c.Diags())
	if h.Has("body") {
		l.body = expr.Compile(h.Get("body"), env, expr.WantAny, c.Diags())
	}
	for _, e := range h.Get("headers").Entries {
		l.headers[e.Key] = e.Value.Str
	}
	if cache := h.Get("cache"); cache.Int("size") > 0 {
		l.cache, _ = lru.New[string, cached](int(cache.Int("size"))) // only a size below 1 fails
		l.ttl, l.negTTL = cache.Duration("ttl"), cache.Duration("negative_ttl")
	}
	if b := h.Get("breaker"); b.Int("failures") > 0 {
		failures := uint32(b.Int("failures"))
		l.breaker = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
			Name: c.Fields.String("name"), MaxRequests: 1, Timeout: b.Duration("cooldown"),
			ReadyToTrip:  func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= failures },
			IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, errNotFound) },
		})
	}
	return l
}

// lookup returns the decoded answer, nil when the service has nothing for this record.
func (l *httpLookup) lookup(ctx context.Context, vars expr.Vars, key any) (any, error) {
	u, err := l.url.Run(vars)
	if err != nil {
		return nil, err
	}
	url, _ := u.(string)
	cacheKey := url
	if key != nil {
		cacheKey = fmt.Sprint(key)
	}
	if l.cache != nil {
		if c, ok := l.cache.Get(cacheKey); ok && time.Now().Before(c.expires) {
			l.hits.Add(1)
			return c.value, nil
		}
		l.misses.Add(1)
	}
	var body []byte
	if l.body != nil {
		v, err := l.body.Run(vars)
		if err != nil {
			return nil, err
		}
		if body, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	call := func() (any, error) { return l.call(ctx, url, body) }
	var v any
	if l.breaker != nil {
		v, err = l.breaker.Execute(call)
	} else {
		v, err = call()
	}
	switch {
	case errors.Is(err, errNotFound):
		if l.cache != nil {
			l.cache.Add(cacheKey, cached{missing: true, expires: time.Now().Add(l.negTTL)})
		}
		return nil, nil
	case err != nil:
		var he *HTTPError
		if !errors.As(err, &he) {
			err = &HTTPError{URL: url, Err: err}
		}
		return nil, err
	}
	if l.cache != nil {
		l.cache.Add(cacheKey, cached{value: v, expires: time.Now().Add(l.ttl)})
	}
	return v, nil
}

func (l *httpLookup) call(ctx context.Context, url string, body []byte) (any, error) {
	select {
	case l.slots <- struct{}{}:
		defer func() { <-l.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, l.method, url, bytes.NewReader(body))
	if err != nil {
		return nil, &HTTPError{URL: url, Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range l.headers {
		req.Header.Set(k, v)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, &HTTPError{URL: url, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	switch {
	case err != nil:
		return nil, &HTTPError{URL: url, Err: err}
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNotFound
	case resp.StatusCode >= 300:
		he := &HTTPError{URL: url, Status: resp.StatusCode}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			he.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, he
	}
	var v any
	if v, err = record.DecodeJSON(data); err != nil {
		return nil, &HTTPError{URL: url, Status: 0, Err: fmt.Errorf("the answer is not JSON: %w", err)}
	}
	return v, nil
}

// counters are the lookup's own numbers: cache hits and misses, and the breaker's state
// (0 closed, 1 half-open, 2 open).
func (l *httpLookup) counters() map[string]int64 {
	c := map[string]int64{"cache_hits": l.hits.Load(), "cache_misses": l.misses.Load()}
	if l.breaker != nil {
		c["breaker_state"] = int64(l.breaker.State())
	}
	return c
}
