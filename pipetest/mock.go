package pipetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Mock answers the HTTP calls of enrich stages whose URL matches: a status and a body, or
// no answer at all (a timeout, a refused connection), to test the retry and outage paths.
type Mock struct {
	URL    string // the URL; * stands for any characters
	Method string // "": any
	Status int
	Body   []byte
	Delay  time.Duration
	Fail   string // "timeout" or "connection": no answer
}

type rawMock struct {
	URL    string        `yaml:"url"`
	Method string        `yaml:"method"`
	Status int           `yaml:"status"`
	Body   yaml.Node     `yaml:"body"`
	Delay  time.Duration `yaml:"delay"`
	Fail   string        `yaml:"fail"`
}

func (rm rawMock) build() (Mock, error) {
	m := Mock{URL: rm.URL, Method: strings.ToUpper(rm.Method), Status: rm.Status, Delay: rm.Delay, Fail: rm.Fail}
	if m.URL == "" {
		return m, errors.New("a mock needs a url (* for any characters)")
	}
	if _, err := path.Match(m.URL, ""); err != nil {
		return m, fmt.Errorf("url %q: %v", m.URL, err)
	}
	switch m.Fail {
	case "", "timeout", "connection":
	default:
		return m, fmt.Errorf("fail: %q is not timeout or connection", m.Fail)
	}
	if m.Status == 0 {
		m.Status = http.StatusOK
	}
	if rm.Body.Kind != 0 {
		b, err := bodyOf(&rm.Body)
		if err != nil {
			return m, fmt.Errorf("body: %v", err)
		}
		m.Body = b
	}
	return m, nil
}

// matches reports whether the mock answers req. The URL pattern's * matches any characters,
// slashes included.
func (m Mock) matches(req *http.Request) bool {
	if m.Method != "" && m.Method != req.Method {
		return false
	}
	return wildcard(m.URL, req.URL.String())
}

func wildcard(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		at := strings.Index(s, p)
		if at < 0 {
			return false
		}
		s = s[at+len(p):]
	}
	return s == ""
}

// mockTransport answers calls from the mocks, in order (the case's first, then the file's);
// a call no mock answers fails to connect and is remembered, for the case to fail.
type mockTransport struct {
	mocks     []Mock
	mu        sync.Mutex
	unmatched []string
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "the mock does not answer (fail: timeout)" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func (t *mockTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	for _, m := range t.mocks {
		if !m.matches(req) {
			continue
		}
		if m.Delay > 0 {
			select {
			case <-time.After(m.Delay):
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
		switch m.Fail {
		case "timeout":
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}}
		case "connection":
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused (the mock's fail: connection)")}
		}
		return &http.Response{StatusCode: m.Status, Status: http.StatusText(m.Status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(m.Body)),
			ContentLength: int64(len(m.Body)), Request: req}, nil
	}
	t.mu.Lock()
	t.unmatched = append(t.unmatched, req.Method+" "+req.URL.String())
	t.mu.Unlock()
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("no mock answers %s %s", req.Method, req.URL)}
}
