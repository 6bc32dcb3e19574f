// Package faultproxy is a TCP proxy that puts network faults between Kafka clients and one
// broker in tests: latency, a bandwidth cap, connection resets (at once or as a storm),
// half-open connections that never answer, new connections refused.
//
// One Proxy stands before one upstream address. Every fault is switched on and off by a method
// call at any time; a change applies at once to the connections open and to those to come, and
// switching a fault off lets the connections it held flow again. The semantics follow
// Toxiproxy's toxics where they overlap (latency, bandwidth, reset_peer, timeout 0), without its
// HTTP API, per-toxic direction or probabilities: a fault here is the proxy's, both ways.
//
// Close closes the listener and every connection and returns once every goroutine of the proxy
// has ended.
package faultproxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DialTimeout bounds the dial of the upstream for each accepted connection; a dial that fails
// resets the client's connection.
const DialTimeout = 10 * time.Second

// Proxy forwards the TCP connections accepted on its address to its upstream, with the faults
// set on it. Its methods are safe for concurrent use.
type Proxy struct {
	upstream string
	ln       net.Listener
	dialer   net.Dialer
	state    atomic.Pointer[faults] // replaced whole on every change
	quit     chan struct{}          // closed by Close

	mu     sync.Mutex // guards links, closed and the replacement of state
	links  map[*link]struct{}
	closed bool

	wg sync.WaitGroup // the accept loop, the storm's loop, every link

	accepted, refused, dialFailed, resets atomic.Int64
	bytesUp, bytesDown                    atomic.Int64
}

// faults is one state of the proxy's faults; a change makes a new one and closes the old one's
// changed channel, which wakes everything that waits on a fault.
type faults struct {
	latency   time.Duration
	bandwidth int // bytes per second per connection and direction; 0 is unlimited
	halfOpen  bool
	refuse    bool
	storm     time.Duration // the longest a connection lives while the storm lasts; 0 is none
	stormFrom time.Time     // when the storm began
	changed   chan struct{}
}

// Stats are the proxy's counters since New.
type Stats struct {
	Accepted   int64 // connections accepted from clients, refused ones included
	Refused    int64 // connections reset at once because SetRefuse was on
	DialFailed int64 // connections reset because the upstream could not be dialed
	Reset      int64 // connections reset by Reset or the reset storm
	Open       int64 // connections open now
	BytesUp    int64 // bytes forwarded from clients to the upstream
	BytesDown  int64 // bytes forwarded from the upstream to clients
}

// New listens on listen (host:port; port 0 picks a free one) and forwards every connection to
// upstream, which is dialed for each connection and need not be up yet.
func New(listen, upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		upstream: upstream,
		ln:       ln,
		dialer:   net.Dialer{Timeout: DialTimeout},
		quit:     make(chan struct{}),
		links:    make(map[*link]struct{}),
	}
	p.state.Store(&faults{changed: make(chan struct{})})
	p.wg.Add(2)
	go p.accept()
	go p.stormLoop()
	return p, nil
}

// Addr is the address the proxy listens on, as host:port: what a broker advertises.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Upstream is the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// Close stops listening, closes every connection (an orderly close, not a reset) and returns
// once every goroutine of the proxy has ended. Later calls return nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	close(p.quit)
	err := p.ln.Close()
	for l := range p.links {
		l.end(false, nil)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// SetLatency delays every chunk of bytes by d after the proxy read it, both ways, keeping their
// order: a round trip through the proxy takes 2d longer. Chunks already waiting are held to
// their new due time, so lowering it (or 0, off) releases them.
func (p *Proxy) SetLatency(d time.Duration) {
	p.update(func(f *faults) { f.latency = max(d, 0) })
}

// SetBandwidth caps each connection's flow at bytesPerSecond in each direction; 0 (or less)
// lifts the cap.
func (p *Proxy) SetBandwidth(bytesPerSecond int) {
	p.update(func(f *faults) { f.bandwidth = max(bytesPerSecond, 0) })
}

// SetHalfOpen, while on, forwards nothing either way, orderly closes and resets included: the
// client sees a peer that never answers (no FIN, no RST) and its requests time out. New
// connections are accepted and hang too. Bytes sent meanwhile wait in the proxy (up to a
// bound, then TCP's own flow control holds the sender) and are forwarded once it is off.
func (p *Proxy) SetHalfOpen(on bool) {
	p.update(func(f *faults) { f.halfOpen = on })
}

// SetRefuse, while on, resets every new connection as soon as it is accepted: a broker down
// behind the proxy. The client's connect succeeds (the port stays bound, so that turning it off
// cannot lose the port) and its reads then fail with ECONNRESET. Connections already open are
// left as they are; Reset ends them.
func (p *Proxy) SetRefuse(on bool) {
	p.update(func(f *faults) { f.refuse = on })
}

// SetResetStorm, with every > 0, resets each connection once it has lived every since it was
// opened or since the storm began, whichever is later: open ones and new ones alike, until it
// is called with 0.
func (p *Proxy) SetResetStorm(every time.Duration) {
	p.update(func(f *faults) {
		f.storm = max(every, 0)
		f.stormFrom = time.Now()
	})
}

// Clear switches every fault off.
func (p *Proxy) Clear() {
	p.update(func(f *faults) { *f = faults{changed: f.changed} })
}

// Reset closes every open connection now with a TCP RST to both its client and the upstream.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.links {
		l.end(true, &p.resets)
	}
}

// Stats reads the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := int64(len(p.links))
	p.mu.Unlock()
	return Stats{
		Accepted:   p.accepted.Load(),
		Refused:    p.refused.Load(),
		DialFailed: p.dialFailed.Load(),
		Reset:      p.resets.Load(),
		Open:       open,
		BytesUp:    p.bytesUp.Load(),
		BytesDown:  p.bytesDown.Load(),
	}
}

// update replaces the faults with a changed copy and wakes whatever waits on the old ones.
func (p *Proxy) update(change func(*faults)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.state.Load()
	f := *old
	f.changed = make(chan struct{})
	change(&f)
	p.state.Store(&f)
	close(old.changed)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, as net/http does.
			select {
			case <-p.quit:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.accepted.Add(1)
		if p.state.Load().refuse {
			p.refused.Add(1)
			closeConn(c, true)
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			closeConn(c, false)
			continue
		}
		l := newLink(p, c)
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go l.run()
	}
}

func (p *Proxy) remove(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// stormLoop resets the connections whose time is up while a storm lasts, waking at the first
// connection's due time or at a change of the faults.
func (p *Proxy) stormLoop() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		f := p.state.Load()
		var wake <-chan time.Time
		if f.storm > 0 {
			timer.Reset(time.Until(p.resetDue(f)))
			wake = timer.C
		}
		select {
		case <-p.quit:
			timer.Stop()
			return
		case <-f.changed:
			timer.Stop()
		case <-wake:
		}
	}
}

// resetDue resets the connections that have lived f.storm and returns the earliest time another
// one will have.
func (p *Proxy) resetDue(f *faults) time.Time {
	now := time.Now()
	next := now.Add(f.storm)
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.links {
		due := l.opened
		if due.Before(f.stormFrom) {
			due = f.stormFrom
		}
		due = due.Add(f.storm)
		if !due.After(now) {
			l.end(true, &p.resets)
		} else if due.Before(next) {
			next = due
		}
	}
	return next
}

// closeConn closes c, with a TCP RST instead of a FIN when rst is set.
func closeConn(c net.Conn, rst bool) {
	if tc, ok := c.(*net.TCPConn); ok && rst {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
