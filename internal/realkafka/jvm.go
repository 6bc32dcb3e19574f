package realkafka

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// jvm is one Kafka process on a store of its own: the single broker (broker and controller
// in one), or a node of a cluster. What they share: the store's format, the JVM's launch,
// readiness, and the end of the process.
type jvm struct {
	name  string // for errors: "the broker", "broker 2", "the controller"
	root  string // repository root: kafka/log4j2.properties
	props string // its server.properties
	log   string // its output, appended at each launch
	heap  string // -Xms and -Xmx, e.g. "384m"
	// deathSig is sent to the process when the one that started it dies, so that a crashed
	// test leaves no JVM behind; 0 detaches it instead (a process group of its own: it
	// outlives `make kafka-up`).
	deathSig syscall.Signal

	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
}

func (j *jvm) log4j() string {
	return "-Dlog4j2.configurationFile=" + filepath.Join(j.root, "kafka", "log4j2.properties")
}

// format writes a fresh KRaft store for the properties, in cluster id: every node of a
// cluster is formatted with the same id. A store already formatted is left as it is.
func (j *jvm) format(libs, id string, extra ...string) error {
	args := append([]string{j.log4j(), "-cp", filepath.Join(libs, "*"), "kafka.tools.StorageTool", "format",
		"-t", id, "-c", j.props, "--ignore-formatted"}, extra...)
	if out, err := exec.Command("java", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("formatting the KRaft store of %s: %v\n%s", j.name, err, out)
	}
	return nil
}

// start launches the JVM on its formatted store and returns at once.
func (j *jvm) start(libs string) error {
	logf, err := os.OpenFile(j.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("java", "-Xms"+j.heap, "-Xmx"+j.heap, "-XX:+UseG1GC", "-XX:ParallelGCThreads=2", "-XX:ConcGCThreads=1",
		"-XX:CICompilerCount=2", "-XX:+ExitOnOutOfMemoryError", j.log4j(), "-cp", filepath.Join(libs, "*"), "kafka.Kafka", j.props)
	cmd.Stdout, cmd.Stderr = logf, logf
	if j.deathSig == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: j.deathSig}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting java: %w", err)
	}
	j.cmd, j.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(j.done) }()
	return nil
}

// await polls ready every 100 ms until it holds. The process exiting first, or within
// passing, is an error that quotes the end of its log; after within, the process is stopped.
func (j *jvm) await(within time.Duration, what string, ready func() bool) error {
	deadline := time.Now().Add(within)
	for {
		if j.exited() {
			return fmt.Errorf("%s exited while starting (exit %d); the end of %s:\n%s", j.name, j.cmd.ProcessState.ExitCode(), j.log, tail(j.log, 30))
		}
		if ready() {
			return nil
		}
		if time.Now().After(deadline) {
			j.stop(60 * time.Second)
			return fmt.Errorf("%s did not %s within %v; the end of %s:\n%s", j.name, what, within, j.log, tail(j.log, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exited reports whether the process was never started or has exited.
func (j *jvm) exited() bool {
	if j.cmd == nil {
		return true
	}
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM (a controlled shutdown) and waits for the exit, killing the process
// after grace. A stopped (SIGSTOP) process is continued first: it would never see SIGTERM.
func (j *jvm) stop(grace time.Duration) error {
	if j.exited() {
		return nil
	}
	_ = j.cmd.Process.Signal(syscall.SIGCONT)
	_ = j.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-j.done:
		return nil
	case <-time.After(grace):
		j.kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM and was killed", j.name, grace)
	}
}

// kill sends SIGKILL and waits for the exit.
func (j *jvm) kill() {
	if j.exited() {
		return
	}
	_ = j.cmd.Process.Kill()
	<-j.done
}

func (j *jvm) pid() int {
	if j.cmd == nil {
		return 0
	}
	return j.cmd.Process.Pid
}

// dials reports whether addr accepts a TCP connection.
func dials(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// freePorts returns n ports free at the call (the kernel's picks, released at return).
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
