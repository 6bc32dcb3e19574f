//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/faultproxy"
	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
)

// world is the cluster every run shares: three brokers and a controller, a fault proxy in
// front of each broker's client listener (what the pipeline reaches them through), and the
// harness's own clients, which go around the proxies.
type world struct {
	b       *devbroker.Broker
	c       *realkafka.Cluster
	proxies []*faultproxy.Proxy // proxies[i] is in front of broker i
}

var (
	worldOnce sync.Once
	shared    *world
	worldErr  error
)

// theWorld starts the cluster at the first call (the first run waits for it).
func theWorld(t *testing.T) *world {
	t.Helper()
	worldOnce.Do(func() {
		w := &world{proxies: make([]*faultproxy.Proxy, 3)}
		var proxyErr error
		began := time.Now()
		w.b, worldErr = devbroker.StartCluster(realkafka.ClusterOptions{Brokers: 3, Log: t.Logf,
			Advertise: func(broker, port int) int {
				p, err := faultproxy.New("127.0.0.1:0", "127.0.0.1:"+strconv.Itoa(port))
				if err != nil {
					proxyErr = err
					return port
				}
				w.proxies[broker] = p
				_, at, _ := cutPort(p.Addr())
				return at
			}})
		if worldErr == nil && proxyErr != nil {
			worldErr = proxyErr
		}
		if worldErr != nil {
			return
		}
		w.c = w.b.RealCluster
		t.Logf("cluster of 3 brokers up in %v", time.Since(began).Round(time.Second))
		shared = w
	})
	if worldErr != nil {
		t.Fatal(worldErr)
	}
	return shared
}

// closeWorld stops the cluster and the proxies, if they were started.
func closeWorld() {
	if shared == nil {
		return
	}
	shared.b.Close()
	for _, p := range shared.proxies {
		if p != nil {
			p.Close()
		}
	}
}

func cutPort(addr string) (host string, port int, err error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			port, err = strconv.Atoi(addr[i+1:])
			return addr[:i], port, err
		}
	}
	return "", 0, fmt.Errorf("no port in %q", addr)
}

// pipelineAddrs are the brokers as the pipeline reaches them: through the proxies.
func (w *world) pipelineAddrs() []string { return w.c.Addrs() }

func (w *world) brokers() int { return len(w.c.Brokers()) }

func (w *world) leaderOf(ctx context.Context, t *testing.T, topic string, partition int32) int {
	t.Helper()
	for {
		l, err := w.c.Leader(ctx, topic, partition)
		if err != nil {
			t.Fatal(err)
		}
		if l >= 0 {
			return l
		}
		if !hold(ctx, 100*time.Millisecond) {
			t.Fatal(ctx.Err())
		}
	}
}

func (w *world) groupCoordinator(ctx context.Context, t *testing.T, group string) int {
	t.Helper()
	c, err := w.c.GroupCoordinator(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *world) txnCoordinator(ctx context.Context, t *testing.T, id string) int {
	t.Helper()
	c, err := w.c.TxnCoordinator(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *world) kill(t *testing.T, i int) {
	t.Helper()
	if err := w.c.Kill(i); err != nil {
		t.Fatal(err)
	}
}

func (w *world) stop(t *testing.T, i int) {
	t.Helper()
	if err := w.c.Stop(i); err != nil {
		t.Fatal(err)
	}
}

func (w *world) pause(t *testing.T, i int) {
	t.Helper()
	if err := w.c.Pause(i); err != nil {
		t.Fatal(err)
	}
}

func (w *world) cont(t *testing.T, i int) {
	t.Helper()
	if err := w.c.Continue(i); err != nil {
		t.Fatal(err)
	}
}

func (w *world) restart(_ context.Context, t *testing.T, i int) {
	t.Helper()
	if err := w.c.Restart(i); err != nil {
		t.Fatal(err)
	}
}

// waitInSync waits (at most 3 minutes) until every replica is back in sync.
func (w *world) waitInSync(ctx context.Context, t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := w.c.WaitInSync(ctx); err != nil {
		t.Fatal(err)
	}
}

// resets counts the connections the proxies have reset so far.
func (w *world) resets() int64 {
	var n int64
	for _, p := range w.proxies {
		n += p.Stats().Reset
	}
	return n
}
