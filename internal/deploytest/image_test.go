//go:build e2e

package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// podmanEnv is the environment podman runs with: the Podman settings make image uses
// (deploy/podman/containers.conf, or $PODMAN_CONF as for make; empty: Podman's own).
func podmanEnv(t *testing.T) []string {
	t.Helper()
	conf, set := os.LookupEnv("PODMAN_CONF")
	if !set {
		var err error
		if conf, err = filepath.Abs(filepath.Join(root, "deploy/podman/containers.conf")); err != nil {
			t.Fatal(err)
		}
	}
	if conf == "" {
		return nil
	}
	return []string{"CONTAINERS_CONF=" + conf}
}

// podman runs podman with args and returns its output, failing the test when it fails.
func podman(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("podman", args...)
	cmd.Env = append(os.Environ(), podmanEnv(t)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// freePort is a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// get fetches url and returns its status and body (0 when nothing answers).
func get(url string) (int, string) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestImage builds the image with `make image` (Podman, from scratch), checks what it holds,
// and runs it as Compose and Kubernetes do, with host networking, on a real Apache Kafka:
// `topics create`, then the orders example (pipelines/orders.yaml mounted where the default
// command reads it) with its metrics port; records produced before and after it joined all
// reach the sink their content decides; `podman stop` (SIGTERM) drains it and it exits 0.
func TestImage(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is not installed, and the image test builds and runs the image with it: " +
			"apt-get install -y podman runc (.ci/run does)")
	}
	const tag = "localhost/pythia-pipe:e2e-test"
	name := fmt.Sprintf("pythia-pipe-e2e-%d", os.Getpid())
	orders, err := filepath.Abs(filepath.Join(root, "pipelines/orders.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, args := range [][]string{{"rm", "-f", "--ignore", name}, {"rm", "-f", "--ignore", name + "-files"}, {"rmi", "-f", "--ignore", tag}} {
			cmd := exec.Command("podman", args...)
			cmd.Env = append(os.Environ(), podmanEnv(t)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Logf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})

	// make image, as a user would run it.
	began := time.Now()
	build := exec.Command("make", "-C", root, "image", "IMAGE="+tag)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image: %v", time.Since(began).Round(100*time.Millisecond))

	var images []struct {
		Size   int64
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Env        []string
			Labels     map[string]string
		}
	}
	if err := json.Unmarshal([]byte(podman(t, "image", "inspect", tag)), &images); err != nil || len(images) != 1 {
		t.Fatalf("podman image inspect: %v (%d images)", err, len(images))
	}
	img := images[0]
	t.Logf("image %s: %.1f MB, labels %v", tag, float64(img.Size)/1e6, img.Config.Labels)
	revision := ""
	if out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output(); err == nil {
		revision = strings.TrimSpace(string(out))
	}
	t.Run("the image as built", func(t *testing.T) {
		c := img.Config
		for _, check := range []struct {
			what      string
			got, want string
		}{
			{"user", c.User, "65532:65532"},
			{"entrypoint", strings.Join(c.Entrypoint, " "), "/usr/local/bin/pythia-pipe"},
			{"default command", strings.Join(c.Cmd, " "), "run " + pipelinePath},
			{"source label", c.Labels["org.opencontainers.image.source"], "https://github.com/pythia-pipe/pythia-pipe"},
			{"revision label", c.Labels["org.opencontainers.image.revision"], revision},
		} {
			if check.got != check.want {
				t.Errorf("%s: %q, want %q", check.what, check.got, check.want)
			}
		}
		if v := c.Labels["org.opencontainers.image.version"]; v == "" || v == "dev" {
			t.Errorf("version label %q: make image should set it", v)
		}
		// A scratch image is the binary and two small files.
		if img.Size > 64e6 {
			t.Errorf("image of %.1f MB: more than the static binary it should hold", float64(img.Size)/1e6)
		}

		version := podman(t, "run", "--rm", tag, "version")
		if !strings.HasPrefix(version, "pythia-pipe ") || !strings.Contains(version, "sarama ") {
			t.Errorf("pythia-pipe version in the image:\n%s", version)
		}
		// Go stamps the commit in a clone (not in a git worktree: "commit unknown").
		if commit := strings.TrimPrefix(strings.Split(version, "\n")[1], "commit "); commit != "unknown" &&
			!strings.HasPrefix(commit, revision) {
			t.Errorf("the binary says commit %s, the label %s", commit, revision)
		}

		// The files beside the binary: the host's CA certificates and the user's passwd.
		podman(t, "create", "--name", name+"-files", tag)
		dir := t.TempDir()
		for file, want := range map[string]string{"/etc/ssl/certs/ca-certificates.crt": "/etc/ssl/certs/ca-certificates.crt", "/etc/passwd": filepath.Join(root, "deploy/image/passwd")} {
			podman(t, "cp", name+"-files:"+file, filepath.Join(dir, filepath.Base(file)))
			got, err := os.ReadFile(filepath.Join(dir, filepath.Base(file)))
			if err != nil {
				t.Fatal(err)
			}
			if w, err := os.ReadFile(want); err != nil || !bytes.Equal(got, w) {
				t.Errorf("%s in the image (%d bytes) is not %s (%v)", file, len(got), want, err)
			}
		}
	})
	if t.Failed() {
		return
	}

	kafka, err := devbroker.StartReal(realkafka.Options{Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kafka.Close)
	brokers := kafka.Addrs()[0]
	// podman run with host networking, orders.yaml where the image's default command reads
	// it, KAFKA_BROKERS; opts before the image, args after it.
	container := func(opts []string, args ...string) []string {
		run := []string{"run", "--rm", "--network", "host", "--stop-timeout", "60",
			"-v", orders + ":" + pipelinePath + ":ro", "-e", "KAFKA_BROKERS=" + brokers}
		return append(append(append(run, opts...), tag), args...)
	}

	// The topics job of compose.yaml.
	created := podman(t, container(nil, "topics", "create", pipelinePath)...)
	for _, topic := range []string{"orders", "orders-out", "orders-big", "orders-dlq"} {
		if !strings.Contains(created, topic) {
			t.Errorf("topics create did not mention %s:\n%s", topic, created)
		}
		if len(kafka.EndOffsets(topic)) == 0 {
			t.Errorf("topic %s was not created", topic)
		}
	}

	// The pipeline, as compose.yaml and the StatefulSet run it.
	const n = 4000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kafka.Produce(ctx, "orders", devbroker.OrdersFeedRange(0, n/2)); err != nil {
		t.Fatal(err)
	}
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := testproc.Start(t, "podman", "the container", podmanEnv(t),
		container([]string{"--name", name}, "run", pipelinePath, "--metrics-addr", metrics)...)
	running := func() {
		if !p.Running() {
			t.Fatalf("the container exited early:\n%s", testproc.LastLines(p.Output(), 30))
		}
	}
	testproc.WaitFor(t, 2*time.Minute, "/readyz to answer 200 (the group joined)", func() bool {
		running()
		code, _ := get("http://" + metrics + "/readyz")
		return code == http.StatusOK
	})
	// The process as the host sees it (no user namespace) and as the image's passwd names it.
	if who := strings.Fields(podman(t, "top", name, "huser", "user")); len(who) != 4 || who[2] != "65532" || who[3] != "nonroot" {
		t.Errorf("the pipeline runs as %q, want uid 65532 (nonroot)", who)
	}
	if err := kafka.Produce(ctx, "orders", devbroker.OrdersFeedRange(n/2, n)); err != nil {
		t.Fatal(err)
	}
	testproc.WaitFor(t, 3*time.Minute, "the group to commit the end of orders", func() bool {
		running()
		return kafka.CaughtUp("order-processors", "orders")
	})
	checkFates(t, kafka, n)
	if code, body := get("http://" + metrics + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if _, body := get("http://" + metrics + "/metrics"); !strings.Contains(body, `pythia_pipe_sink_acked_total{pipeline="orders",sink="out"}`) {
		t.Errorf("/metrics has no sink_acked_total of out:\n%s", testproc.LastLines(body, 20))
	}

	// podman stop sends SIGTERM (the image's stop signal), as docker compose down and the
	// kubelet do; the drain must finish well before podman's SIGKILL at 60 s.
	stopped := time.Now()
	podman(t, "stop", "--time", "60", name)
	if code := p.Wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0:\n%s", code, testproc.LastLines(p.Output(), 30))
	}
	took := time.Since(stopped)
	t.Logf("stopped in %v after SIGTERM", took.Round(time.Millisecond))
	if limit := 30*time.Second + drainSlack; took > limit { // orders.yaml's drain_timeout is the default, 30s
		t.Errorf("the stop took %v, more than drain_timeout + %v", took, drainSlack)
	}
	out := p.Output()
	for _, want := range []string{`"signal":"` + syscall.SIGTERM.String() + `"`, `"msg":"draining`, `"msg":"stopped cleanly"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the container's log lacks %s:\n%s", want, testproc.LastLines(out, 20))
		}
	}
	if !kafka.CaughtUp("order-processors", "orders") {
		t.Errorf("after the drain, the committed offsets %v are not the end %v", kafka.Committed("order-processors", "orders"), kafka.EndOffsets("orders"))
	}
}

// checkFates fails unless each of the n records of the orders feed reached the sink its
// content decides (devbroker.OrdersFate), once.
func checkFates(t *testing.T, kafka *devbroker.Broker, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	where := map[int][]string{}
	for _, sink := range []string{"out", "big", "dlq"} {
		recs, err := kafka.Read(ctx, "orders-"+sink)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			var seq int
			if _, err := fmt.Sscan(r.Headers["seq"], &seq); err != nil {
				t.Fatalf("a record in orders-%s without its seq header: %v", sink, r.Headers)
			}
			where[seq] = append(where[seq], sink)
		}
	}
	counts := map[string]int{}
	for i := range n {
		fate, got := devbroker.OrdersFate(i), where[i]
		counts[fate]++
		switch {
		case fate == "dropped" && len(got) > 0:
			t.Fatalf("record %d should have been dropped, went to %v", i, got)
		case fate != "dropped" && (len(got) != 1 || got[0] != fate):
			t.Fatalf("record %d went to %v, want %s once", i, got, fate)
		}
	}
	t.Logf("%d records: %v", n, counts)
}
