package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream is a test server behind the proxy: it echoes, or drains what it reads.
type upstream struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	got   atomic.Int64 // bytes drain read
}

// echo starts a server that writes back what it reads and closes its side once the client has.
func echo(t testing.TB) *upstream {
	return serve(t, func(c net.Conn, _ *upstream) {
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
	})
}

// drain starts a server that reads and counts in u.got.
func drain(t testing.TB) *upstream {
	return serve(t, func(c net.Conn, u *upstream) {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				u.got.Add(int64(n))
			}
			if err != nil {
				return
			}
		}
	})
}

func serve(t testing.TB, handle func(net.Conn, *upstream)) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{ln: ln}
	u.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns = append(u.conns, c)
			u.mu.Unlock()
			u.wg.Go(func() { handle(c, u) })
		}
	})
	t.Cleanup(u.close)
	return u
}

func (u *upstream) addr() string { return u.ln.Addr().String() }

// close stops the server and ends its connections.
func (u *upstream) close() {
	_ = u.ln.Close()
	u.mu.Lock()
	for _, c := range u.conns {
		_ = c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// start puts a proxy before addr, closed at the end of the test.
func start(t testing.TB, addr string) *Proxy {
	t.Helper()
	p, err := New("127.0.0.1:0", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// dial connects to the proxy, closed at the end of the test.
func dial(t testing.TB, p *Proxy) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// dialReset connects to the proxy and waits for its connection to be reset, which may come
// before the connect returns (then the connect fails with the reset). It is what happened
// otherwise, nil when the connection was reset.
func dialReset(p *Proxy) error {
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		if isReset(err) {
			return nil
		}
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err = c.Read(make([]byte, 1)); isReset(err) {
		return nil
	}
	return fmt.Errorf("read: %v, want a reset", err)
}

// roundTrip writes msg and reads as many bytes back within d; what it read comes back with the
// error.
func roundTrip(c net.Conn, msg []byte, d time.Duration) ([]byte, error) {
	if err := c.SetDeadline(time.Now().Add(d)); err != nil {
		return nil, err
	}
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	return readN(c, len(msg))
}

func readN(c net.Conn, n int) ([]byte, error) {
	got := make([]byte, n)
	m, err := io.ReadFull(c, got)
	return got[:m], err
}

// mustEcho fails the test unless msg comes back whole within 5 s.
func mustEcho(t testing.TB, c net.Conn, msg []byte) {
	t.Helper()
	got, err := roundTrip(c, msg, 5*time.Second)
	if err != nil {
		t.Fatalf("echo of %d bytes: %v after %d", len(msg), err, len(got))
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes came back different", len(msg))
	}
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// pattern is n bytes that show a reordering.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}
