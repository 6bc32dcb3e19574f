package faultproxy

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	chunkSize = 32 << 10 // the most one read takes
	// queueLen bounds the chunks read and not yet written, per connection and direction: at most
	// 2 MiB held while a fault holds them; past it the reader stops and TCP holds the sender.
	queueLen = 64
	// pieces is how many writes a second of a capped flow is cut into (at least a byte each).
	pieces = 100
	// forever is a wait that only a change of the faults or the link's end cuts short.
	forever time.Duration = math.MaxInt64
)

var buffers = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// link is one client connection and its upstream connection: a reader and a writer each way.
type link struct {
	p      *Proxy
	client net.Conn
	opened time.Time
	ctx    context.Context // cancelled at the end: stops a dial in progress
	cancel context.CancelFunc
	done   chan struct{} // closed at the end

	mu     sync.Mutex
	up     net.Conn // nil until dialed
	ended  bool
	closed int // directions ended by an orderly close (FIN) forwarded
}

// chunk is what one read returned, with when; the last chunk of a direction carries why its
// reader stopped (io.EOF for an orderly close) and no data.
type chunk struct {
	buf *[]byte
	n   int
	at  time.Time
	err error
}

// pipe is one direction of a link.
type pipe struct {
	l        *link
	src, dst net.Conn
	q        chan chunk
	count    *atomic.Int64
	next     time.Time // when a capped flow may write again
	timer    *time.Timer
}

func newLink(p *Proxy, client net.Conn) *link {
	ctx, cancel := context.WithCancel(context.Background())
	return &link{p: p, client: client, opened: time.Now(), ctx: ctx, cancel: cancel,
		done: make(chan struct{})}
}

// run dials the upstream, forwards both ways until the link ends, and closes it.
func (l *link) run() {
	defer l.p.wg.Done()
	defer l.p.remove(l)
	defer l.cancel()
	up, err := l.p.dialer.DialContext(l.ctx, "tcp", l.p.upstream)
	if err != nil {
		l.end(true, &l.p.dialFailed)
		return
	}
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		closeConn(up, true)
		return
	}
	l.up = up
	l.mu.Unlock()

	var wg sync.WaitGroup
	for _, d := range []*pipe{l.pipe(l.client, up, &l.p.bytesUp), l.pipe(up, l.client, &l.p.bytesDown)} {
		wg.Go(d.read)
		wg.Go(d.write)
	}
	wg.Wait()
	l.end(false, nil)
}

func (l *link) pipe(src, dst net.Conn, count *atomic.Int64) *pipe {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &pipe{l: l, src: src, dst: dst, q: make(chan chunk, queueLen), count: count, timer: t}
}

// end closes both connections, with a reset when rst is set, unless the link has ended
// already; then it adds one to count (if any) before either side can see the close.
func (l *link) end(rst bool, count *atomic.Int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	l.ended = true
	if count != nil {
		count.Add(1)
	}
	close(l.done)
	l.cancel()
	closeConn(l.client, rst)
	if l.up != nil {
		closeConn(l.up, rst)
	}
}

// closedOne notes a direction closed in order and ends the link once both are.
func (l *link) closedOne() {
	l.mu.Lock()
	l.closed++
	both := l.closed == 2
	l.mu.Unlock()
	if both {
		l.end(false, nil)
	}
}

// read queues what src sends until it closes or fails, then queues why.
func (d *pipe) read() {
	for {
		buf := buffers.Get().(*[]byte)
		n, err := d.src.Read(*buf)
		c := chunk{at: time.Now()}
		if n > 0 {
			c.buf, c.n = buf, n
		} else {
			buffers.Put(buf)
		}
		if c.n > 0 && !d.put(c) {
			return
		}
		if err != nil {
			d.put(chunk{at: c.at, err: err})
			return
		}
	}
}

func (d *pipe) put(c chunk) bool {
	select {
	case d.q <- c:
		return true
	case <-d.l.done:
		if c.buf != nil {
			buffers.Put(c.buf)
		}
		return false
	}
}

// write forwards the queued chunks to dst under the faults, then what ended src: an orderly
// close as a FIN (CloseWrite), anything else by resetting the link.
func (d *pipe) write() {
	for {
		var c chunk
		select {
		case c = <-d.q:
		case <-d.l.done:
			return
		}
		if !d.hold(c.at) {
			d.free(c)
			return
		}
		if c.buf == nil {
			if !errors.Is(c.err, io.EOF) {
				d.l.end(true, nil)
				return
			}
			if cw, ok := d.dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				d.l.closedOne()
			} else {
				d.l.end(false, nil)
			}
			return
		}
		ok := d.send((*c.buf)[:c.n])
		d.free(c)
		if !ok {
			d.l.end(true, nil)
			return
		}
	}
}

func (d *pipe) free(c chunk) {
	if c.buf != nil {
		buffers.Put(c.buf)
	}
}

// hold waits while the link is half-open and until a chunk read at at is due under the latency.
// It is false when the link ended meanwhile.
func (d *pipe) hold(at time.Time) bool {
	for {
		f := d.l.p.state.Load()
		var wait time.Duration
		if f.halfOpen {
			wait = forever
		} else if f.latency > 0 {
			wait = time.Until(at.Add(f.latency))
		}
		if wait <= 0 {
			return true
		}
		if !d.sleep(f.changed, wait) {
			return false
		}
	}
}

// send writes b to dst, in pieces paced by the bandwidth cap, stopping while the link is
// half-open. It is false when the link ended or the write failed.
func (d *pipe) send(b []byte) bool {
	for len(b) > 0 {
		f := d.l.p.state.Load()
		if f.halfOpen {
			if !d.sleep(f.changed, forever) {
				return false
			}
			continue
		}
		n := len(b)
		if f.bandwidth > 0 {
			now := time.Now()
			if d.next.After(now) {
				if !d.sleep(f.changed, d.next.Sub(now)) {
					return false
				}
				continue
			}
			n = min(n, max(1, f.bandwidth/pieces))
			// Pace from the previous due time, so that late wake-ups do not lower the rate, unless
			// the flow was idle: no credit is saved up.
			from := d.next
			if now.Sub(from) > time.Second/pieces {
				from = now
			}
			d.next = from.Add(time.Duration(n) * time.Second / time.Duration(f.bandwidth))
		}
		m, err := d.dst.Write(b[:n])
		d.count.Add(int64(m))
		if err != nil {
			return false
		}
		b = b[n:]
	}
	return true
}

// sleep waits for wait (forever: without end), a change of the faults or the end of the link;
// it is false at the end of the link.
func (d *pipe) sleep(changed <-chan struct{}, wait time.Duration) bool {
	var timeout <-chan time.Time
	if wait < forever {
		d.timer.Reset(wait)
		defer d.timer.Stop()
		timeout = d.timer.C
	}
	select {
	case <-changed:
		return true
	case <-timeout:
		return true
	case <-d.l.done:
		return false
	}
}
