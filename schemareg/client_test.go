package schemareg

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

const orderV1 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`

// fake is srfake's registry with a counter of the requests it answered.
func fake(t *testing.T, opts ...srfake.Option) (*srfake.Registry, *atomic.Int64) {
	t.Helper()
	reg := srfake.New(opts...)
	t.Cleanup(reg.Close)
	var n atomic.Int64
	reg.Intercept(func(http.ResponseWriter, *http.Request) bool { n.Add(1); return false })
	return reg, &n
}

func client(t *testing.T, c Config) *Client {
	t.Helper()
	if c.Timeout == 0 {
		c.Timeout, c.ConnectTimeout = 2*time.Second, time.Second
	}
	cl, err := New(&c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestSchemaByIDIsCached(t *testing.T) {
	reg, requests := fake(t)
	reg.SeedSchema("orders-value", 1, 7, sr.Schema{Schema: orderV1})
	cl := client(t, Config{URLs: []string{reg.URL()}})
	for range 3 {
		s, err := cl.SchemaByID(context.Background(), 7)
		if err != nil || s.Schema != orderV1 {
			t.Fatalf("SchemaByID = %q, %v", s.Schema, err)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests for one id, want 1", n)
	}
}

func TestVersions(t *testing.T) {
	reg, _ := fake(t)
	reg.SeedSchema("orders-value", 1, 7, sr.Schema{Schema: orderV1})
	reg.SeedSchema("orders-value", 2, 9, sr.Schema{Schema: strings.Replace(orderV1, `"}]}`, `"},{"name":"n","type":"long","default":0}]}`, 1)})
	cl := client(t, Config{URLs: []string{reg.URL()}})
	cases := []struct {
		name    string
		version int
		id      int
	}{
		{"latest", 0, 9},
		{"pinned", 1, 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := cl.Version(context.Background(), "orders-value", c.version)
			if err != nil || s.ID != c.id {
				t.Errorf("Version(%d) = id %d, %v; want %d", c.version, s.ID, err, c.id)
			}
		})
	}
}

func TestRegisterAndLookup(t *testing.T) {
	reg, _ := fake(t)
	cl := client(t, Config{URLs: []string{reg.URL()}})
	ctx := context.Background()
	var e *Error
	if _, err := cl.Lookup(ctx, "orders-value", sr.Schema{Schema: orderV1}); !errors.As(err, &e) || e.Status != 404 {
		t.Fatalf("Lookup before registering = %v, want a 404", err)
	}
	got, err := cl.Register(ctx, "orders-value", sr.Schema{Schema: orderV1})
	if err != nil {
		t.Fatal(err)
	}
	again, err := cl.Lookup(ctx, "orders-value", sr.Schema{Schema: orderV1})
	if err != nil || again.ID != got.ID {
		t.Errorf("Lookup after registering = %d, %v; want %d", again.ID, err, got.ID)
	}
}

// Each failure comes back as an Error with the registry's answer (none, when it could not
// be reached), and never with a credential in it.
func TestErrors(t *testing.T) {
	reg, _ := fake(t, srfake.WithAuth("Bearer s3cret-token"))
	reg.SeedSchema("orders-value", 1, 7, sr.Schema{Schema: orderV1})
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + refused.Addr().String()
	refused.Close()
	cases := []struct {
		name   string
		c      Config
		id     int
		status int
		code   int
	}{
		{"unknown id", Config{URLs: []string{reg.URL()}, Token: "s3cret-token"}, 99, 404, 40403},
		{"no credentials", Config{URLs: []string{reg.URL()}}, 7, 401, 50002},
		{"wrong credentials", Config{URLs: []string{reg.URL()}, Username: "u", Password: "s3cret-pw"}, 7, 403, 50002},
		{"nothing listens", Config{URLs: []string{down}, Token: "s3cret-token"}, 7, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := client(t, c.c).SchemaByID(context.Background(), c.id)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want an Error", err)
			}
			if e.Status != c.status || e.Code != c.code {
				t.Errorf("status %d code %d, want %d %d (%v)", e.Status, e.Code, c.status, c.code, err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("a credential in %q", err)
			}
		})
	}
	// The second URL answers when the first cannot be reached.
	if _, err := client(t, Config{URLs: []string{down, reg.URL()}, Token: "s3cret-token"}).SchemaByID(context.Background(), 7); err != nil {
		t.Errorf("with a second URL: %v", err)
	}
}

func TestInProcess(t *testing.T) {
	reg := srfake.NewRegistry()
	reg.SeedSchema("orders-value", 1, 7, sr.Schema{Schema: orderV1})
	cl, err := New(&Config{URLs: []string{"http://in-process"}, Timeout: time.Second}, Options{Transport: InProcess(reg.Handler())})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := cl.SchemaByID(context.Background(), 7); err != nil || s.Schema != orderV1 {
		t.Errorf("SchemaByID = %q, %v", s.Schema, err)
	}
}
