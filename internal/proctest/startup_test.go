//go:build !e2e

package proctest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// Startup errors are one line naming the cause, within the connect timeout: no hang, no
// stack trace.
func TestStartupErrors(t *testing.T) {
	plain, err := devbroker.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	secured, err := devbroker.Start(kfake.EnableSASL(), kfake.Superuser("PLAIN", "alice", "alice-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer secured.Close()
	for _, topic := range []string{"in", "out"} {
		if err := secured.CreateTopic(topic, 1); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		brokers  string
		security string
		want     string
	}{
		{"no broker", "127.0.0.1:1", "", "connection refused: is Kafka running there, and is kafka.brokers right?"},
		{"unknown topic", strings.Join(plain.Addrs(), ","), "", "topic(s) in, out do not exist"},
		{"wrong password", strings.Join(secured.Addrs(), ","),
			"  security: {protocol: SASL_PLAINTEXT, sasl: {mechanism: PLAIN, username: alice, password: not-the-password}}\n",
			"SASL authentication failed for user alice"},
		{"TLS to a plaintext port", strings.Join(plain.Addrs(), ","), "  security: {protocol: SSL}\n", "does this port speak TLS?"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "p.yaml")
			src := "version: 1\nname: startup\nkafka:\n  brokers: " + c.brokers + "\n  connect_timeout: 3s\n" + c.security +
				"source: {type: kafka, topics: [in]}\nsinks: [{name: o, type: kafka, topic: out}]\n"
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			p := start(t, plain, "run", "run", file)
			code := p.Wait(t, 15*time.Second)
			took := time.Since(began)
			out := strings.TrimSpace(p.Output())
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if strings.Count(out, "\n") != 0 || !strings.HasPrefix(out, "pythia-pipe: ") || !strings.Contains(out, c.want) {
				t.Errorf("want one line with %q, got:\n%s", c.want, out)
			}
			if strings.Contains(out, "not-the-password") || strings.Contains(out, "goroutine ") {
				t.Errorf("secret or stack trace in the output:\n%s", out)
			}
			// The check gives up at the connect timeout (3s) plus a second; the rest is room for
			// starting a process on a loaded machine. A hang would take minutes.
			if took > 9*time.Second {
				t.Errorf("took %v; the connect timeout is 3s", took)
			}
		})
	}
}
