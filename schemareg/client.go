package schemareg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"
)

// Client talks to the registry of a pipeline: schemas by id (cached: an id never changes its
// schema), subjects' versions, registration. It is safe for concurrent use.
type Client struct {
	sr  *sr.Client
	url string // the first URL, for messages

	mu   sync.Mutex
	byID map[int]sr.Schema
}

// Options change how a client reaches its registry, for tests and `dev`.
type Options struct {
	// Transport, when set, carries every request (an in-process registry); the block's TLS
	// and connect timeout do not apply then.
	Transport http.RoundTripper
	// URLs, when set, replace the block's.
	URLs []string
}

// New makes the client of c. It does not reach the registry: the first request does.
func New(c *Config, o Options) (*Client, error) {
	urls := c.URLs
	if len(o.URLs) > 0 {
		urls = o.URLs
	}
	if len(urls) == 0 {
		return nil, errors.New("registry: no URL")
	}
	tr := o.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: c.ConnectTimeout}).DialContext
		t.TLSHandshakeTimeout = c.ConnectTimeout
		if c.TLS != nil {
			tc, err := c.TLS.Config()
			if err != nil {
				return nil, err
			}
			t.TLSClientConfig = tc
		}
		tr = t
	}
	opts := []sr.ClientOpt{sr.URLs(urls...), sr.HTTPClient(&http.Client{Timeout: c.Timeout, Transport: tr}), sr.UserAgent("pythia-pipe")}
	if c.Username != "" {
		opts = append(opts, sr.BasicAuth(c.Username, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, sr.BearerToken(c.Token))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return &Client{sr: cl, url: redact(urls[0]), byID: map[int]sr.Schema{}}, nil
}

// URL is the registry's first URL, without credentials.
func (c *Client) URL() string { return c.url }

// SchemaByID is the schema with id, from the cache once fetched.
func (c *Client) SchemaByID(ctx context.Context, id int) (sr.Schema, error) {
	c.mu.Lock()
	s, ok := c.byID[id]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := c.sr.SchemaByID(ctx, id)
	if err != nil {
		return sr.Schema{}, c.wrap(fmt.Sprintf("schema id %d", id), err)
	}
	c.mu.Lock()
	c.byID[id] = s
	c.mu.Unlock()
	return s, nil
}

// Latest is the schema of a subject's version, or of its latest when version is 0.
func (c *Client) Version(ctx context.Context, subject string, version int) (sr.SubjectSchema, error) {
	what := fmt.Sprintf("subject %s version %d", subject, version)
	if version <= 0 {
		version, what = -1, fmt.Sprintf("subject %s (latest version)", subject)
	}
	s, err := c.sr.SchemaByVersion(ctx, subject, version)
	if err != nil {
		return sr.SubjectSchema{}, c.wrap(what, err)
	}
	return s, nil
}

// Lookup finds schema s under subject (its id and version); a schema not registered there is
// an error of status 404.
func (c *Client) Lookup(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error) {
	got, err := c.sr.LookupSchema(ctx, subject, s)
	if err != nil {
		return sr.SubjectSchema{}, c.wrap("the schema under subject "+subject, err)
	}
	return got, nil
}

// Register registers s under subject, or finds it there already; the registry checks its
// compatibility with the subject's versions.
func (c *Client) Register(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error) {
	got, err := c.sr.CreateSchema(ctx, subject, s)
	if err != nil {
		return sr.SubjectSchema{}, c.wrap("registering a schema under subject "+subject, err)
	}
	return got, nil
}

func (c *Client) wrap(what string, err error) error {
	e := &Error{What: what, URL: c.url, Err: err}
	var re *sr.ResponseError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		e.Status, e.Code = re.StatusCode, re.ErrorCode
	case errors.As(err, &ue):
		e.Err = ue.Err // "dial tcp ...: connection refused", without the URL said twice
	}
	return e
}

// Error is a registry request that failed: what was asked, the HTTP status and the registry's
// error code (0 when no answer came: the registry could not be reached, or did not answer
// in time), and the cause.
type Error struct {
	What   string // "schema id 7", "subject orders-value (latest version)"
	URL    string // the registry, without credentials
	Status int
	Code   int // the registry's error_code: 40403 schema not found, 40401 subject not found, ...
	Err    error
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("schema registry %s: %s: no answer: %v", e.URL, e.What, e.Err)
	}
	return fmt.Sprintf("schema registry %s: %s: %v (HTTP %d, error code %d)", e.URL, e.What, e.Err, e.Status, e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// RegistryAnswer is the HTTP status and the registry's error code (0, 0: no answer), for
// package failure's table.
func (e *Error) RegistryAnswer() (status, code int) { return e.Status, e.Code }

// ProtoFiles are the texts of a Protobuf schema and of the schemas it references (its
// imports), by file name; the schema itself is named main.
func (c *Client) ProtoFiles(ctx context.Context, s sr.Schema, main string) (map[string]string, error) {
	files := map[string]string{main: s.Schema}
	var gather func(refs []sr.SchemaReference, depth int) error
	gather = func(refs []sr.SchemaReference, depth int) error {
		for _, r := range refs {
			if _, done := files[r.Name]; done || depth > 16 {
				continue
			}
			ref, err := c.Version(ctx, r.Subject, r.Version)
			if err != nil {
				return err
			}
			files[r.Name] = ref.Schema.Schema
			if err := gather(ref.References, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return files, gather(s.References, 0)
}
