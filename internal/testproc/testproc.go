// Package testproc runs the built pythia-pipe binary as a process in tests: build once, start
// with an environment, signal, wait with deadlines, show the output when a test fails.
package testproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles cmd/pythia-pipe (below root) into dir, with the race detector when race is set.
func Build(root, dir string, race bool) (string, error) {
	return BuildCommand(root, "./cmd/pythia-pipe", dir, race)
}

// BuildCommand compiles the command pkg (a path below root, such as ./cmd/pythia-pipe) into
// dir, named after its last element, with the race detector when race is set.
func BuildCommand(root, pkg, dir string, race bool) (string, error) {
	name := filepath.Base(pkg)
	bin := filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", name, err, out)
	}
	return bin, nil
}

// WaitFor polls cond until it holds or the deadline passes.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Proc is one running pythia-pipe process.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	out    Buffer // stdout and stderr together
	exited chan struct{}
}

// Output is what the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Buffer collects output that one goroutine writes while another reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Start runs bin with args and extra environment variables; the test's cleanup kills it if it
// still runs and prints its output if the test failed.
func Start(t testing.TB, bin, name string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		if p.Running() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, LastLines(p.Output(), 40))
		}
	})
	return p
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid is the process's id, for what a test applies to it from outside (its limits).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends s to the process.
func (p *Proc) Signal(t testing.TB, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil && p.Running() {
		t.Fatalf("signalling %s: %v", p.Name, err)
	}
}

// Wait waits for the process to exit and returns its exit code.
func (p *Proc) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", p.Name, d)
	}
	return p.cmd.ProcessState.ExitCode()
}

// LastLines is the end of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogMax is the largest value a JSON log line in logs gives the integer field, or 0.
func LogMax(logs, field string) int {
	most := 0
	re := regexp.MustCompile(`"` + regexp.QuoteMeta(field) + `":(\d+)`)
	for _, m := range re.FindAllStringSubmatch(logs, -1) {
		n, _ := strconv.Atoi(m[1])
		most = max(most, n)
	}
	return most
}
