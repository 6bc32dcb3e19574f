package faultproxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// Each fault, set while a connection is open, shows on it and on new connections.
func TestFaultEffects(t *testing.T) {
	tests := []struct {
		name  string
		set   func(*Proxy)
		check func(t *testing.T, p *Proxy, open *net.TCPConn)
	}{{
		name: "latency delays each way and keeps the order",
		set:  func(p *Proxy) { p.SetLatency(100 * time.Millisecond) },
		check: func(t *testing.T, p *Proxy, open *net.TCPConn) {
			for _, c := range []*net.TCPConn{open, dial(t, p)} {
				begin := time.Now()
				var msg []byte
				for i := range 200 { // many small writes: many chunks, each with its own due time
					piece := pattern(50 + i)
					msg = append(msg, piece...)
					if _, err := c.Write(piece); err != nil {
						t.Fatal(err)
					}
				}
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				got, err := readN(c, len(msg))
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("read %d of %d bytes (%v), equal: %v", len(got), len(msg), err, bytes.Equal(got, msg[:len(got)]))
				}
				if took := time.Since(begin); took < 200*time.Millisecond {
					t.Errorf("a round trip took %v, want at least twice the latency, 200ms", took)
				}
			}
		},
	}, {
		name: "bandwidth caps each direction",
		set:  func(p *Proxy) { p.SetBandwidth(64 << 10) },
		check: func(t *testing.T, p *Proxy, open *net.TCPConn) {
			begin := time.Now()
			mustEcho(t, open, pattern(32<<10)) // 0.5 s each way, the two ways overlapping
			if took := time.Since(begin); took < 400*time.Millisecond {
				t.Errorf("32 KiB at 64 KiB/s took %v, want about 500ms", took)
			}
		},
	}, {
		name: "half-open answers nothing, neither data nor FIN nor RST, until it is off",
		set:  func(p *Proxy) { p.SetHalfOpen(true) },
		check: func(t *testing.T, p *Proxy, open *net.TCPConn) {
			fresh := dial(t, p)
			for _, c := range []*net.TCPConn{open, fresh} {
				if got, err := roundTrip(c, []byte("anyone?"), 200*time.Millisecond); !isTimeout(err) {
					t.Fatalf("read %q, %v; want a timeout", got, err)
				}
			}
			// The client closes its side: the echo would close too, but its FIN is held.
			if err := open.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			_ = open.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := open.Read(make([]byte, 1)); !isTimeout(err) {
				t.Fatalf("read after the client's FIN: %v, want a timeout", err)
			}
			if s := p.Stats(); s.Open != 2 || s.BytesUp != 5 || s.BytesDown != 5 {
				t.Errorf("stats %+v, want 2 open and nothing forwarded since the first 5 bytes", s)
			}
			p.SetHalfOpen(false)
			_ = open.SetReadDeadline(time.Now().Add(5 * time.Second))
			if got, err := io.ReadAll(open); err != nil || string(got) != "anyone?" {
				t.Errorf("after half-open: read %q, %v; want the echo then EOF", got, err)
			}
			_ = fresh.SetReadDeadline(time.Now().Add(5 * time.Second))
			if got, err := readN(fresh, 7); err != nil || string(got) != "anyone?" {
				t.Errorf("new connection after half-open: read %q, %v", got, err)
			}
		},
	}, {
		name: "reset closes open connections with RST, not new ones",
		set:  func(p *Proxy) { p.Reset() },
		check: func(t *testing.T, p *Proxy, open *net.TCPConn) {
			_ = open.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := open.Read(make([]byte, 1)); !isReset(err) {
				t.Fatalf("read: %v, want a reset", err)
			}
			mustEcho(t, dial(t, p), []byte("again"))
			if s := p.Stats(); s.Reset != 1 || s.Accepted != 2 {
				t.Errorf("stats %+v, want 1 reset of 2 accepted", s)
			}
		},
	}, {
		name: "refuse resets new connections at once, leaves open ones, until it is off",
		set:  func(p *Proxy) { p.SetRefuse(true) },
		check: func(t *testing.T, p *Proxy, open *net.TCPConn) {
			if err := dialReset(p); err != nil {
				t.Fatal(err)
			}
			mustEcho(t, open, []byte("still here"))
			p.SetRefuse(false)
			mustEcho(t, dial(t, p), []byte("welcome back"))
			if s := p.Stats(); s.Refused != 1 || s.Accepted != 3 || s.Open != 2 {
				t.Errorf("stats %+v, want 1 refused of 3 accepted, 2 open", s)
			}
		},
	}, {
		name: "a reset storm resets each connection once it has lived the interval, until it stops",
		set:  func(p *Proxy) { p.SetResetStorm(100 * time.Millisecond) },
		check: func(t *testing.T, p *Proxy, open *net.TCPConn) {
			for i := range 3 {
				begin, c := time.Now(), open
				if i > 0 {
					c = dial(t, p)
				}
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(make([]byte, 1)); !isReset(err) {
					t.Fatalf("connection %d: read %v, want a reset", i, err)
				}
				if i > 0 && time.Since(begin) < 90*time.Millisecond {
					t.Errorf("connection %d reset after %v, want about 100ms", i, time.Since(begin))
				}
			}
			if s := p.Stats(); s.Reset != 3 {
				t.Errorf("stats %+v, want 3 reset", s)
			}
			p.SetResetStorm(0)
			c := dial(t, p)
			mustEcho(t, c, []byte("calm"))
			time.Sleep(300 * time.Millisecond) // three storm intervals: it would have been reset
			mustEcho(t, c, []byte("still calm"))
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, echo(t).addr())
			open := dial(t, p)
			mustEcho(t, open, []byte("hello"))
			waitFor(t, 5*time.Second, "5 bytes counted each way", func() bool {
				s := p.Stats()
				return s.BytesUp == 5 && s.BytesDown == 5
			})
			tt.set(p)
			tt.check(t, p, open)
		})
	}
}

// A fault that holds bytes on an open connection releases them, in order and whole, as soon as
// it is off, and the connection goes on.
func TestFaultOffReleases(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Proxy)
		off  func(*Proxy)
	}{
		{"latency", func(p *Proxy) { p.SetLatency(time.Hour) }, func(p *Proxy) { p.SetLatency(0) }},
		{"bandwidth", func(p *Proxy) { p.SetBandwidth(1) }, func(p *Proxy) { p.SetBandwidth(0) }},
		{"half-open", func(p *Proxy) { p.SetHalfOpen(true) }, func(p *Proxy) { p.SetHalfOpen(false) }},
		{"all of them, cleared", func(p *Proxy) {
			p.SetLatency(time.Hour)
			p.SetBandwidth(1)
			p.SetHalfOpen(true)
		}, (*Proxy).Clear},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, echo(t).addr())
			c := dial(t, p)
			mustEcho(t, c, []byte("before"))
			tt.set(p)
			msg := pattern(64 << 10)
			go func() { _, _ = c.Write(msg) }()
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			got, err := readN(c, len(msg))
			if !isTimeout(err) || len(got) > 10 {
				t.Fatalf("while on: read %d bytes, %v; want a timeout and next to nothing", len(got), err)
			}
			tt.off(p)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			rest, err := readN(c, len(msg)-len(got))
			if got = append(got, rest...); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("once off: %v, %d bytes of %d, equal %v", err, len(got), len(msg), bytes.Equal(got, msg[:len(got)]))
			}
			mustEcho(t, c, []byte("after"))
		})
	}
}
