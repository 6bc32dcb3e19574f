package bench

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
)

// BenchmarkKafkaStreams is the orders example in Kafka Streams 4.1 (streams/OrdersStreams.java)
// on the same broker and backlog, in a JVM of its own with -Xmx512m. Its clock starts when the
// JVM runs the app's first line, as the Go peers' start in a running process (the JVM's boot is
// jvm-start-s); cpu-µs/record and peak-RSS-MB are the JVM's alone, so on the in-process broker
// they leave out the broker, which the Go peers' include: the table runs it on a real Kafka
// only. It needs Java 17 and Maven, which builds the app into bin/orders-streams.
func BenchmarkKafkaStreams(b *testing.B) {
	n := backlog()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		classpath := streamsApp(b)
		br := setup(b, n)
		defer br.Close()
		jvm := startStreamsApp(b, classpath, "local.bench.OrdersStreams", strings.Join(br.Addrs(), ","))
		defer jvm.kill() // when the benchmark fails before stopping it
		b.StartTimer()
		began, jvmCPU := startClock(br), cpuTime(jvm.pid())
		jvm.waitCommit(b, br, "orders-streams", "orders")
		waitCaughtUp(b, br, "orders-streams", "orders")
		took := began.stop()
		took.cpu = cpuTime(jvm.pid()) - jvmCPU
		peak, mapped := vmHWM(jvm.pid()), procStatusMB(jvm.pid(), "RssFile:")
		b.StopTimer()
		jvm.stop(b)
		report(b, n, took)
		b.ReportMetric(peak, "peak-RSS-MB") // the JVM's, in place of this process's
		b.ReportMetric(mapped, "file-RSS-MB")
		b.ReportMetric(jvm.boot.Seconds(), "jvm-start-s")
	}
}

// streamsApp builds streams/ with Maven into bin/orders-streams, again whenever its sources
// change, and returns the app's java classpath.
func streamsApp(b *testing.B) string {
	if _, err := exec.LookPath("java"); err != nil {
		b.Fatal("BenchmarkKafkaStreams runs the app with java (17 or later), which is not on PATH")
	}
	root, err := realkafka.FindRoot()
	if err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(root, "internal", "bench", "streams")
	dir := filepath.Join(root, "bin", "orders-streams")
	classpath := filepath.Join(dir, "target", "orders-streams.jar") + string(filepath.ListSeparator) + filepath.Join(dir, "libs", "*")
	sum, err := sourcesSum(src)
	if err != nil {
		b.Fatal(err)
	}
	if built, err := os.ReadFile(filepath.Join(dir, ".built")); err == nil && string(built) == sum {
		return classpath
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		b.Fatal("BenchmarkKafkaStreams builds internal/bench/streams with Maven (mvn), which is not on PATH")
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		b.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "orders-streams-") // renamed into place when complete
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	mvn := exec.Command("mvn", "-B", "-q", "-f", filepath.Join(src, "pom.xml"), "-Dbuild.dir="+filepath.Join(tmp, "target"),
		"package", "dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory="+filepath.Join(tmp, "libs"))
	if out, err := mvn.CombinedOutput(); err != nil {
		b.Fatalf("building internal/bench/streams with Maven: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".built"), []byte(sum), 0o644); err != nil {
		b.Fatal(err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		b.Fatal(err)
	}
	return classpath
}

// sourcesSum is a digest of the pom and the sources under dir/src.
func sourcesSum(dir string) (string, error) {
	h := sha256.New()
	files := []string{filepath.Join(dir, "pom.xml")}
	err := filepath.WalkDir(filepath.Join(dir, "src"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// streamsJVM is the running app; its output (Kafka's warnings and errors) goes to log.
type streamsJVM struct {
	cmd  *exec.Cmd
	log  string
	boot time.Duration // launch to the app's first line
	done chan struct{}
}

// startStreamsApp launches the app's class main with args and waits until the JVM has booted.
func startStreamsApp(b *testing.B, classpath, main string, args ...string) *streamsJVM {
	j := &streamsJVM{log: filepath.Join(b.TempDir(), "streams.log"), done: make(chan struct{})}
	logf, err := os.Create(j.log)
	if err != nil {
		b.Fatal(err)
	}
	// -Xmx512m: the heap the table gave Kafka Streams; peak-RSS-MB is the whole JVM's.
	j.cmd = exec.Command("java", append([]string{"-Xmx512m", "-XX:+ExitOnOutOfMemoryError", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"-cp", classpath, main}, args...)...) // #nosec G204 -- our own app
	j.cmd.Stderr = logf
	j.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // dies with its benchmark
	stdout, err := j.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	launched := time.Now()
	if err := j.cmd.Start(); err != nil {
		b.Fatalf("starting java: %v", err)
	}
	started := make(chan struct{})
	go func() {
		r := bufio.NewReader(stdout)
		if line, _ := r.ReadString('\n'); strings.TrimSpace(line) == "started" {
			close(started)
		}
		_, _ = io.Copy(logf, r)
		_ = j.cmd.Wait()
		logf.Close()
		close(j.done)
	}()
	select {
	case <-started:
		j.boot = time.Since(launched)
	case <-j.done:
		b.Fatalf("the Kafka Streams app exited as it started (exit %d); %s:\n%s", j.cmd.ProcessState.ExitCode(), j.log, tailFile(j.log))
	case <-time.After(time.Minute):
		j.kill()
		b.Fatalf("the Kafka Streams app did not start within a minute; %s:\n%s", j.log, tailFile(j.log))
	}
	return j
}

func (j *streamsJVM) pid() int { return j.cmd.Process.Pid }

// waitCommit waits for the app's first commit of topic by group, failing at once if it exits
// first: a client that cannot run on the broker gives up long before waitCaughtUp's minute.
func (j *streamsJVM) waitCommit(b *testing.B, br *devbroker.Broker, group, topic string) {
	for deadline := time.Now().Add(time.Minute); len(br.Committed(group, topic)) == 0; time.Sleep(10 * time.Millisecond) {
		select {
		case <-j.done:
			b.Fatalf("the Kafka Streams app exited before its first commit (exit %d); %s:\n%s", j.cmd.ProcessState.ExitCode(), j.log, tailFile(j.log))
		default:
		}
		if time.Now().After(deadline) {
			j.kill()
			b.Fatalf("the Kafka Streams app committed nothing within a minute; %s:\n%s", j.log, tailFile(j.log))
		}
	}
}

// stop stops the app with SIGTERM, which its shutdown hook answers by closing KafkaStreams.
func (j *streamsJVM) stop(b *testing.B) {
	_ = j.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-j.done:
	case <-time.After(time.Minute):
		j.kill()
		b.Fatalf("the Kafka Streams app did not stop within a minute of SIGTERM; %s:\n%s", j.log, tailFile(j.log))
	}
	if code := j.cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGTERM) && code != 0 {
		b.Fatalf("the Kafka Streams app exited %d on SIGTERM; %s:\n%s", code, j.log, tailFile(j.log))
	}
}

func (j *streamsJVM) kill() {
	_ = j.cmd.Process.Kill()
	<-j.done
}

// vmHWM is process pid's peak resident memory in MB, 0 where /proc does not say.
func vmHWM(pid int) float64 { return procStatusMB(pid, "VmHWM:") }

// vmRSS is process pid's resident memory now, in MB.
func vmRSS(pid int) float64 { return procStatusMB(pid, "VmRSS:") }

// procStatusMB is a field of process pid's /proc status in MB, 0 where it does not say.
func procStatusMB(pid int, field string) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			var kb float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb)
			return kb / 1024
		}
	}
	return 0
}

// tailFile is the last 30 lines of the file at path.
func tailFile(path string) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-30, 0):], "\n")
}
