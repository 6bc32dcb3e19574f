package realkafka

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ControllerID is the node.id of a cluster's controller; a broker's is its index.
const ControllerID = 100

// ClusterPorts are a cluster's listeners, each broker's at its index.
type ClusterPorts struct {
	Controller int   // the controller's CONTROLLER listener
	Clients    []int // each broker's PLAINTEXT listener, for clients, as it listens
	Internal   []int // each broker's INTERNAL listener: replication, and the harness's requests
}

// ClusterFixedPorts are the ports of `make cluster-up`.
var ClusterFixedPorts = ClusterPorts{Controller: 19090, Clients: []int{19092, 19093, 19094}, Internal: []int{19192, 19193, 19194}}

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	Root    string       // repository root; found from the working directory when empty
	Dir     string       // the nodes' data go in folders under it; a new one under .kafka/ when empty
	Brokers int          // 3 when 0
	Ports   ClusterPorts // zero: free ports are picked
	// Advertise, when set, is asked once per broker for the port its PLAINTEXT listener
	// advertises, given the broker's index and the port it listens on: a test starts a fault
	// proxy to that port there and returns the proxy's. Clients then reach the broker only
	// through it; replication and the harness's own requests (Leader, WaitInSync, ...) go over
	// the INTERNAL listener, around it.
	Advertise func(broker, port int) int
	Log       func(format string, args ...any)
	// Detach lets the nodes outlive the process that started them (make cluster-up);
	// otherwise they are killed when it dies, so that a crashed test leaves no JVM behind.
	Detach bool
}

// Node is one process of a cluster: a broker or the controller.
type Node struct {
	ID         int    // node.id: a broker's index, or ControllerID
	Dir        string // its data
	Log        string // its output
	Port       int    // the port it listens on: a broker's PLAINTEXT listener, the controller's CONTROLLER
	Advertised int    // a broker's PLAINTEXT port as clients are told it: Port unless Advertise chose another
	Internal   int    // a broker's INTERNAL listener
	// Started is the time from launch to ready at the last (re)start: accepting connections
	// (the controller), in the cluster's metadata (a broker).
	Started time.Duration

	proc atomic.Pointer[jvm] // replaced at each Restart
}

// PID is the process id of the node's current JVM.
func (n *Node) PID() int { return n.proc.Load().pid() }

// Addr is the broker's address as clients are told it.
func (n *Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Advertised) }

// Running reports whether the node's JVM is alive and not stopped (SIGSTOP).
func (n *Node) Running() bool { return !n.proc.Load().exited() && !n.Paused() }

// Paused reports whether the node's JVM is stopped by a signal (Pause).
func (n *Node) Paused() bool {
	j := n.proc.Load()
	if j.exited() {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", j.pid()))
	if err != nil {
		return false
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ')'
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'T'
	}
	return false
}

// Cluster is a running KRaft cluster on 127.0.0.1: one controller and its brokers.
type Cluster struct {
	Dir        string
	Controller *Node
	Started    time.Duration // launch to every broker in the metadata

	brokers []*Node
	libs    string
	// admins[i] is a client seeded with broker i's INTERNAL listener alone: the harness asks
	// the brokers it knows run, each directly, never through a proxy (clusterinfo.go).
	admins []*kgo.Client
}

// StartCluster formats fresh stores and starts a controller and the brokers, waiting (up to
// 120 s) until every broker is in the cluster's metadata. Its settings are in
// kafka/cluster.properties.
func StartCluster(o ClusterOptions) (*Cluster, error) {
	if err := defaults(&o.Root, &o.Log); err != nil {
		return nil, err
	}
	if o.Brokers == 0 {
		o.Brokers = 3
	}
	libs, err := Libs(o.Root)
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		if err := os.MkdirAll(filepath.Join(o.Root, ".kafka"), 0o755); err != nil {
			return nil, err
		}
		if o.Dir, err = os.MkdirTemp(filepath.Join(o.Root, ".kafka"), "cluster-"); err != nil {
			return nil, err
		}
	}
	if o.Ports.Controller == 0 {
		p, err := freePorts(1 + 2*o.Brokers)
		if err != nil {
			return nil, err
		}
		o.Ports = ClusterPorts{Controller: p[0], Clients: p[1 : 1+o.Brokers], Internal: p[1+o.Brokers:]}
	}
	if len(o.Ports.Clients) != o.Brokers || len(o.Ports.Internal) != o.Brokers {
		return nil, fmt.Errorf("%d brokers need %d client and internal ports: %+v", o.Brokers, o.Brokers, o.Ports)
	}
	tmpl, err := os.ReadFile(filepath.Join(o.Root, "kafka", "cluster.properties"))
	if err != nil {
		return nil, err
	}
	shared := strings.ReplaceAll(string(tmpl), "@CONTROLLER_PORT@", strconv.Itoa(o.Ports.Controller))
	death := syscall.SIGKILL // its data are thrown away: a controlled shutdown would only take time
	if o.Detach {
		death = 0
	}

	c := &Cluster{Dir: o.Dir, libs: libs}
	started := false
	defer func() {
		if !started { // what was launched is killed, the data removed; errors quote the logs
			c.Close()
		}
	}()
	node := func(id int, name, heap string, port int, own ...string) (*Node, error) {
		n := &Node{ID: id, Dir: filepath.Join(o.Dir, name), Port: port}
		n.Log = filepath.Join(n.Dir, "server.log")
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return nil, err
		}
		j := &jvm{name: strings.ReplaceAll(name, "-", " "), root: o.Root, props: filepath.Join(n.Dir, "server.properties"),
			log: n.Log, heap: heap, deathSig: death}
		own = append(own, "node.id="+strconv.Itoa(id), "log.dirs="+filepath.Join(n.Dir, "kraft-logs"))
		if err := os.WriteFile(j.props, []byte(strings.Join(own, "\n")+"\n\n"+shared), 0o600); err != nil {
			return nil, err
		}
		n.proc.Store(j)
		return n, nil
	}
	// The controller needs little memory: the cluster's metadata, a few topics.
	if c.Controller, err = node(ControllerID, "controller", "256m", o.Ports.Controller,
		"process.roles=controller", fmt.Sprintf("listeners=CONTROLLER://127.0.0.1:%d", o.Ports.Controller)); err != nil {
		return nil, err
	}
	for i := range o.Brokers {
		port, internal := o.Ports.Clients[i], o.Ports.Internal[i]
		advertised := port
		if o.Advertise != nil {
			advertised = o.Advertise(i, port)
		}
		n, err := node(i, fmt.Sprintf("broker-%d", i), "384m", port, "process.roles=broker",
			fmt.Sprintf("listeners=INTERNAL://127.0.0.1:%d,PLAINTEXT://127.0.0.1:%d", internal, port),
			fmt.Sprintf("advertised.listeners=INTERNAL://127.0.0.1:%d,PLAINTEXT://127.0.0.1:%d", internal, advertised),
			"inter.broker.listener.name=INTERNAL")
		if err != nil {
			return nil, err
		}
		n.Advertised, n.Internal = advertised, internal
		c.brokers = append(c.brokers, n)
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.internalAddr()), kgo.DialTimeout(2*time.Second))
		if err != nil {
			return nil, err
		}
		c.admins = append(c.admins, cl)
	}

	// Format and launch every node at once: a JVM's start is mostly one thread, and the
	// brokers wait for the controller by themselves.
	id, formatting := clusterID(), time.Now()
	nodes := append([]*Node{c.Controller}, c.brokers...)
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for k, n := range nodes {
		wg.Go(func() { errs[k] = n.proc.Load().format(libs, id) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o.Log("formatted %d nodes in %s in %v (cluster id %s)", len(nodes), o.Dir, time.Since(formatting).Round(time.Millisecond), id)
	began := time.Now()
	for _, n := range nodes {
		if err := n.proc.Load().start(libs); err != nil {
			return nil, err
		}
	}
	if err := c.Controller.proc.Load().await(120*time.Second, "accept connections", func() bool {
		return dials("127.0.0.1:" + strconv.Itoa(c.Controller.Port))
	}); err != nil {
		return nil, err
	}
	c.Controller.Started = time.Since(began)
	for i, n := range c.brokers {
		if err := c.awaitBroker(i, 120*time.Second-time.Since(began)); err != nil {
			return nil, err
		}
		n.Started = time.Since(began)
	}
	c.Started, started = time.Since(began), true
	o.Log("a controller and %d brokers ready in %v: %s", len(c.brokers), c.Started.Round(time.Millisecond), strings.Join(c.Addrs(), ","))
	return c, nil
}

func (n *Node) internalAddr() string { return "127.0.0.1:" + strconv.Itoa(n.Internal) }

// awaitBroker waits until broker i listens and is in the metadata (registered, caught up
// with the cluster's metadata, and not fenced).
func (c *Cluster) awaitBroker(i int, within time.Duration) error {
	n := c.brokers[i]
	return n.proc.Load().await(within, "join the cluster", func() bool {
		return dials("127.0.0.1:"+strconv.Itoa(n.Port)) && dials(n.internalAddr()) && c.listed(i)
	})
}

// Addrs are the brokers' addresses as clients are told them (a bootstrap list).
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.brokers))
	for i, n := range c.brokers {
		out[i] = n.Addr()
	}
	return out
}

// DirectAddrs are the brokers' INTERNAL listeners: a client bootstrapped there is told
// those, and reaches the brokers around any proxy (a test's checks while faults run).
func (c *Cluster) DirectAddrs() []string {
	out := make([]string, len(c.brokers))
	for i, n := range c.brokers {
		out[i] = n.internalAddr()
	}
	return out
}

// Broker is broker i (its node.id).
func (c *Cluster) Broker(i int) *Node { return c.brokers[i] }

// Brokers are the cluster's brokers, by index.
func (c *Cluster) Brokers() []*Node { return append([]*Node(nil), c.brokers...) }

// Kill kills broker i with SIGKILL, as a crash would, and waits until it has exited.
func (c *Cluster) Kill(i int) error {
	c.brokers[i].proc.Load().kill()
	return nil
}

// Stop stops broker i with SIGTERM, a controlled shutdown (its leaderships move first), and
// waits until it has exited (killing it after 60 s).
func (c *Cluster) Stop(i int) error { return c.brokers[i].proc.Load().stop(60 * time.Second) }

// Pause stops broker i with SIGSTOP: a hung broker, whose connections stay open and never
// answer. It is fenced once its session times out (broker.session.timeout.ms).
func (c *Cluster) Pause(i int) error { return c.signal(i, syscall.SIGSTOP, true) }

// Continue resumes broker i after Pause. It rejoins by itself; WaitInSync waits for it.
func (c *Cluster) Continue(i int) error { return c.signal(i, syscall.SIGCONT, false) }

func (c *Cluster) signal(i int, sig syscall.Signal, paused bool) error {
	n := c.brokers[i]
	j := n.proc.Load()
	if j.exited() {
		return fmt.Errorf("broker %d is not running", i)
	}
	if err := j.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("broker %d: %w", i, err)
	}
	for deadline := time.Now().Add(5 * time.Second); n.Paused() != paused; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("broker %d: still paused=%v 5s after %v", i, !paused, sig)
		}
	}
	return nil
}

// Restart starts broker i again on its data, after Kill or Stop, and waits (up to 90 s)
// until it is back in the cluster's metadata. Its replicas may still be catching up:
// WaitInSync waits for them.
func (c *Cluster) Restart(i int) error {
	n := c.brokers[i]
	if !n.proc.Load().exited() {
		return fmt.Errorf("broker %d is running: Kill or Stop it first", i)
	}
	j := *n.proc.Load()
	j.cmd, j.done = nil, nil
	began := time.Now()
	if err := j.start(c.libs); err != nil {
		return err
	}
	n.proc.Store(&j)
	if err := c.awaitBroker(i, 90*time.Second); err != nil {
		return err
	}
	n.Started = time.Since(began)
	return nil
}

// Close kills every node (their data are thrown away, so a controlled shutdown would only
// take time) and removes the cluster's data.
func (c *Cluster) Close() {
	for _, cl := range c.admins {
		cl.Close()
	}
	var wg sync.WaitGroup
	for _, n := range append([]*Node{c.Controller}, c.brokers...) {
		if n != nil {
			wg.Go(n.proc.Load().kill)
		}
	}
	wg.Wait()
	os.RemoveAll(c.Dir)
}
