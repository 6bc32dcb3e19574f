package stages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// httpLookup calls a service per record (through an LRU cache with TTL, negative caching of
// "not found", a concurrency limit and a breaker that waits out outages) and decodes the
// JSON answer.
type httpLookup struct {
	url, body *expr.Program
	method    string
	headers   map[string]string
	client    *http.Client
	slots     chan struct{}
	cache     *answerCache // nil without a cache
	breaker   *breaker     // nil when disabled
	redact    *redactor

	hits, misses atomic.Int64
}

// HTTPError is a lookup that failed; Class says which retry_on class it belongs to. URL and
// Body have their secrets redacted (redact.go): they end up in logs and DLQ headers.
type HTTPError struct {
	URL        string
	Status     int           // 0 when no answer came
	RetryAfter time.Duration // from a 429's Retry-After header
	Body       string        // the start of the answer, on one line; "" when there was none
	Err        error
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("enrich http: %s: %v", e.URL, e.Err)
	if e.Status != 0 {
		msg = fmt.Sprintf("enrich http: %s answered %d", e.URL, e.Status)
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}
func (e *HTTPError) Unwrap() error { return e.Err }

// Class is the retry_on class of a lookup failure: timeout, connection, http_5xx, http_429,
// or "" for failures that retrying will not cure (a 4xx, an answer that is not JSON).
func (e *HTTPError) Class() string {
	switch {
	case e.Status == http.StatusTooManyRequests:
		return "http_429"
	case e.Status >= 500:
		return "http_5xx"
	case e.Status != 0:
		return ""
	case failure.IsTimeout(e.Err):
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(e.Err, &oe) {
		return "connection"
	}
	return ""
}

// serviceFault reports a failure of the service rather than of the record: only these count
// towards the breaker.
func (e *HTTPError) serviceFault() bool { return e.Class() != "" }

// errNotFound marks a 404: the lookup found nothing (not a failure).
var errNotFound = errors.New("not found")

func newHTTPLookup(c *Config, h *spec.Value, env expr.Env) *httpLookup {
	concurrency := int(h.Int("concurrency"))
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost = concurrency, concurrency // keep a connection per call in flight
	var rt http.RoundTripper = transport
	if c.HTTP != nil {
		rt = c.HTTP
	}
	l := &httpLookup{method: h.String("method"), headers: map[string]string{},
		client: &http.Client{Timeout: h.Duration("timeout"), Transport: rt}, slots: make(chan struct{}, concurrency)}
	l.url = expr.Compile(h.Get("url"), env, expr.WantString, c.Diags())
	if h.Has("body") {
		l.body = expr.Compile(h.Get("body"), env, expr.WantAny, c.Diags())
	}
	for _, e := range h.Get("headers").Entries {
		l.headers[e.Key] = e.Value.Str
	}
	l.redact = newRedactor(h.Strings("redact"), l.headers)
	if cache := h.Get("cache"); cache.Int("size") > 0 {
		l.cache = newAnswerCache(int(cache.Int("size")), cache.Int("max_bytes"), cache.Duration("ttl"), cache.Duration("negative_ttl"))
	}
	b := h.Get("breaker")
	switch {
	case b.Int("failures") > 0:
		l.breaker = newBreaker(int(b.Int("failures")), b.Duration("cooldown"), b.Duration("max_outage"))
	case b.Duration("max_outage") > 0:
		at := b.Get("max_outage")
		c.Parser.Errorf(at.Pos, at.Path, "max_outage needs the breaker: with failures: 0 no outage is detected, so failures use up attempts instead")
	}
	return l
}

// lookup returns the decoded answer, nil when the service has nothing for this record.
func (l *httpLookup) lookup(ctx context.Context, vars expr.Vars, key any) (any, error) {
	u, err := l.url.Run(vars)
	if err != nil {
		return nil, err
	}
	target, _ := u.(string)
	var body []byte
	if l.body != nil {
		v, err := l.body.Run(vars)
		if err != nil {
			return nil, err
		}
		if body, err = record.AppendJSON(nil, v); err != nil {
			return nil, err
		}
	}
	cacheKey := l.method + " " + target + "\n" + string(body)
	if key != nil {
		cacheKey = fmt.Sprint(key)
	}
	if l.cache != nil {
		if v, missing, ok := l.cache.get(cacheKey); ok {
			l.hits.Add(1)
			if missing {
				return nil, nil
			}
			return v, nil
		}
		l.misses.Add(1)
	}
	v, size, err := l.callPatiently(ctx, target, body)
	switch {
	case errors.Is(err, errNotFound):
		if l.cache != nil {
			l.cache.add(cacheKey, nil, true, size)
		}
		return nil, nil
	case err != nil:
		return nil, err
	}
	if l.cache != nil {
		l.cache.add(cacheKey, v, false, size)
	}
	return v, nil
}

// callPatiently calls the service through the breaker. A failure of the service is the
// record's own only when the service answers others: the error is returned (using up an
// attempt under retry, and not counted by the breaker) once a call begun after the record's
// first failure has been answered. Until then nobody can tell, so the record asks again,
// soon and uncounted, and its failures count towards the breaker; once it opens, the record
// waits in admit for the service to come back. Without a breaker every failure is returned.
//
// A record alone with a service that fails it every time is therefore an outage: nothing
// tells the two apart, and max_outage bounds the wait.
func (l *httpLookup) callPatiently(ctx context.Context, target string, body []byte) (any, int, error) {
	if l.breaker == nil {
		return l.call(ctx, target, body)
	}
	b := l.breaker
	tr := trialOf(ctx)
	pauses := 0 // how often the record has waited to ask again: 10ms, doubling up to a second
	for {
		probe, err := b.admit(ctx)
		if err != nil {
			return nil, 0, err
		}
		began := time.Now()
		v, size, err := l.call(ctx, target, body)
		var he *HTTPError
		switch {
		case ctx.Err() != nil:
			b.release(probe)
			return nil, 0, ctx.Err()
		case err == nil || errors.Is(err, errNotFound) || !errors.As(err, &he) || !he.serviceFault():
			b.answer(probe, began) // the service answered, whatever it said about this record
			return v, size, err
		}
		if tr.failed.IsZero() {
			tr.failed = time.Now()
		}
		if !probe && b.answeredSince(tr.failed) {
			return nil, 0, err // others are answered: this failure is the record's own
		}
		if b.fail(probe, err) {
			continue // an outage: wait in admit, nothing is counted against the record
		}
		pauses++
		t := time.NewTimer(failure.Backoff(pauses, 10*time.Millisecond, time.Second, 2, 0))
		select {
		case <-t.C:
		case <-b.changes():
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// trial is what a record's calls have shown so far: when the service first failed it. A
// retry keeps one per record across its attempts, so that once the service has answered
// others, the record's later failures count at once.
type trial struct{ failed time.Time }

type trialKey struct{}

// withTrial gives the calls made under ctx one trial.
func withTrial(ctx context.Context) context.Context {
	return context.WithValue(ctx, trialKey{}, &trial{})
}

func trialOf(ctx context.Context) *trial {
	if t, ok := ctx.Value(trialKey{}).(*trial); ok {
		return t
	}
	return &trial{}
}

func (l *httpLookup) call(ctx context.Context, target string, body []byte) (any, int, error) {
	select {
	case l.slots <- struct{}{}:
		defer func() { <-l.slots }()
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, l.method, target, bytes.NewReader(body))
	if err != nil {
		return nil, 0, l.failed(target, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range l.headers {
		req.Header.Set(k, v)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, 0, l.failed(target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 { // only its start is read, however large
		head, err := io.ReadAll(io.LimitReader(resp.Body, excerptRead+1))
		if resp.StatusCode == http.StatusNotFound {
			return nil, len(head), errNotFound
		}
		return nil, 0, l.refused(target, resp, head, err != nil)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	switch {
	case err != nil:
		return nil, 0, l.failed(target, err)
	case len(data) > maxAnswer:
		return nil, 0, l.failed(target, fmt.Errorf("the answer is larger than %d MiB", maxAnswer>>20))
	}
	v, err := record.DecodeJSON(data)
	if err != nil {
		he := l.failed(target, fmt.Errorf("the answer is not JSON: %w", err))
		_, secrets := l.redact.url(target)
		he.Body = l.redact.excerpt(data[:min(len(data), excerptRead)], len(data) > excerptRead, secrets)
		return nil, 0, he
	}
	return v, len(data), nil
}

// maxAnswer is the largest answer a lookup reads.
const maxAnswer = 16 << 20

// failed is a call to target that got no usable answer.
func (l *httpLookup) failed(target string, err error) *HTTPError {
	shown, _ := l.redact.url(target)
	return &HTTPError{URL: shown, Err: l.redact.err(err)}
}

// refused is an answer with an error status; head is what was read of its body, more whether
// it went on (or could not be read to its end).
func (l *httpLookup) refused(target string, resp *http.Response, head []byte, more bool) *HTTPError {
	if len(head) > excerptRead {
		head, more = head[:excerptRead], true
	}
	shown, secrets := l.redact.url(target)
	he := &HTTPError{URL: shown, Status: resp.StatusCode, Body: l.redact.excerpt(head, more, secrets)}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		he.RetryAfter = time.Duration(s) * time.Second
	}
	return he
}

// httpLookupCounters describes the numbers counters returns, for the metrics that export them.
var httpLookupCounters = []spec.Counter{
	{Key: "cache_hits", Metric: "enrich_cache_hits_total", Help: "HTTP lookups answered from the cache."},
	{Key: "cache_misses", Metric: "enrich_cache_misses_total", Help: "HTTP lookups not in the cache."},
	{Key: "cache_bytes", Metric: "enrich_cache_bytes", Help: "Bytes the answers in an HTTP lookup's cache take.", Gauge: true},
	{Key: "breaker_state", Metric: "breaker_state", Help: "Circuit breaker state: 0 closed, 1 half-open (a probe is out), 2 open: the stage waits for its service.", Gauge: true},
	{Key: "waiting", Metric: "stage_waiting", Help: "Records a stage holds while its service is down (its breaker open); they use up no attempt.", Gauge: true},
	{Key: "outages", Metric: "enrich_outages_total", Help: "Times an enrich stage's breaker opened: its service failed every call."},
	{Key: "outage_ms", Help: "How long the current outage has lasted, in milliseconds: the progress line says it."},
}

// counters are the lookup's own numbers: cache hits and misses; the breaker's state (0
// closed, 1 half-open, 2 open), the records waiting for the service, the outages so far and
// how long the current one has lasted.
func (l *httpLookup) counters() map[string]int64 {
	c := map[string]int64{"cache_hits": l.hits.Load(), "cache_misses": l.misses.Load()}
	if l.cache != nil {
		c["cache_bytes"] = l.cache.bytes.Load()
	}
	if b := l.breaker; b != nil {
		c["breaker_state"] = int64(b.stateNow())
		c["waiting"] = b.waiting.Load()
		c["outages"] = b.outages.Load()
		c["outage_ms"] = b.outageFor().Milliseconds()
	}
	return c
}

// answerCache is an LRU cache of answers bounded in entries and in bytes (an answer can be
// 16 MiB). Expiry is checked when an entry is read, so it needs no goroutine of its own.
type answerCache struct {
	lru         *lru.Cache[string, cached]
	maxBytes    int64
	ttl, negTTL time.Duration
	mu          sync.Mutex // serialises adds, so that bytes stays the sum of the entries
	bytes       atomic.Int64
}

// cached is an answer (or a "not found"), its size and when it expires.
type cached struct {
	value   any
	missing bool
	size    int64
	expires time.Time
}

func newAnswerCache(entries int, maxBytes int64, ttl, negTTL time.Duration) *answerCache {
	c := &answerCache{maxBytes: maxBytes, ttl: ttl, negTTL: negTTL}
	c.lru, _ = lru.NewWithEvict(entries, func(_ string, v cached) { c.bytes.Add(-v.size) }) // only a size below 1 fails
	return c
}

func (c *answerCache) get(key string) (v any, missing, ok bool) {
	e, ok := c.lru.Get(key)
	if !ok || !time.Now().Before(e.expires) {
		return nil, false, false
	}
	return e.value, e.missing, true
}

// add keeps an answer of size bytes (the body as received; the key counts too), evicting the
// least recently used answers past the byte bound. An answer larger than the bound is not kept.
func (c *answerCache) add(key string, v any, missing bool, size int) {
	n := int64(size + len(key))
	if n > c.maxBytes {
		return
	}
	ttl := c.ttl
	if missing {
		ttl = c.negTTL
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Peek(key); ok { // Add replaces without the evict callback
		c.bytes.Add(-old.size)
	}
	c.lru.Add(key, cached{value: v, missing: missing, size: n, expires: time.Now().Add(ttl)})
	c.bytes.Add(n)
	for c.bytes.Load() > c.maxBytes {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			break
		}
	}
}
