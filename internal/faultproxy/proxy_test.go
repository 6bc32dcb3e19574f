package faultproxy

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bytes go through both ways intact on several connections at once, and are counted.
func TestForward(t *testing.T) {
	p := start(t, echo(t).addr())
	const conns, size = 4, 1 << 20
	msg := pattern(size)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		c := dial(t, p)
		wg.Go(func() {
			got, err := roundTrip(c, msg, 10*time.Second)
			if err == nil && !bytes.Equal(got, msg) {
				err = io.ErrUnexpectedEOF
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A write is counted once it returns, which can be a moment after its reader has the bytes.
	waitFor(t, 5*time.Second, "the bytes counted", func() bool { return p.Stats().BytesDown == conns*size })
	s := p.Stats()
	if s.Accepted != conns || s.Open != conns || s.BytesUp != conns*size {
		t.Errorf("stats %+v, want %d accepted and open, %d bytes each way", s, conns, conns*size)
	}
}

// A close on either side reaches the other as a FIN, after what was sent before it, and the
// connection is gone from the proxy once both sides closed.
func TestOrderlyClose(t *testing.T) {
	p := start(t, echo(t).addr())
	c := dial(t, p)
	msg := pattern(100 << 10)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c) // up to the echo's FIN
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes, %v; want %d and EOF", len(got), err, len(msg))
	}
	waitFor(t, 5*time.Second, "the connection to leave the proxy", func() bool { return p.Stats().Open == 0 })
}

// An upstream that cannot be reached resets the client's connection, which is counted.
func TestDialFailed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now: connection refused
	p := start(t, addr)
	if err := dialReset(p); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.DialFailed != 1 {
		t.Errorf("stats %+v, want 1 dial failed", s)
	}
	waitFor(t, 5*time.Second, "the connection to leave the proxy", func() bool { return p.Stats().Open == 0 })
}

// Close ends every connection, whatever holds it, and returns only once every goroutine of the
// proxy has ended: none is left the moment it returns. (TestMain checks the whole package with
// goleak once the test servers are closed too.)
func TestCloseLeavesNoGoroutine(t *testing.T) {
	up := echo(t)
	p, err := New("127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	mustEcho(t, dial(t, p), []byte("flowing"))

	// A client that does not read: the proxy's writer blocks in Write.
	stuck := dial(t, p)
	go func() { _, _ = stuck.Write(make([]byte, 16<<20)) }() // ends when the proxy closes
	waitFor(t, 5*time.Second, "the proxy to fill the client's buffers", func() bool {
		return p.Stats().BytesDown > 1<<20
	})

	p.SetLatency(time.Hour) // chunks held in the latency queue
	c := dial(t, p)
	if _, err := c.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	p.SetHalfOpen(true) // and held by the half-open connection
	p.SetResetStorm(time.Hour)
	if _, err := dial(t, p).Write([]byte("hung")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "4 connections open", func() bool { return p.Stats().Open == 4 })

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if left := ours(); left != "" {
		t.Fatalf("goroutines of the proxy left after Close:\n%s", left)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("the proxy still accepts after Close")
	}
}

// ours is the stacks of the goroutines running the proxy's own functions.
func ours() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		for _, f := range []string{"faultproxy.(*Proxy)", "faultproxy.(*link)", "faultproxy.(*pipe)"} {
			if strings.Contains(g, f) {
				left = append(left, g)
				break
			}
		}
	}
	return strings.Join(left, "\n\n")
}
