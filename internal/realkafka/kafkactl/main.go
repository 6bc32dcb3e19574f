// Command kafkactl starts and stops the real Kafka broker of `make kafka-up` / `make
// kafka-down`: listeners on the conventional ports 9092-9096, data in .kafka/dev.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
)

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: kafkactl up|down")
		os.Exit(2)
	}
	root, err := realkafka.FindRoot()
	if err == nil {
		if os.Args[1] == "up" {
			err = up(root)
		} else {
			err = down(root)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafkactl:", err)
		os.Exit(1)
	}
}

func pidFile(root string) string { return filepath.Join(root, ".kafka", "dev.pid") }

func running(root string) (int, bool) {
	b, err := os.ReadFile(pidFile(root))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && syscall.Kill(pid, 0) == nil
}

func up(root string) error {
	if pid, ok := running(root); ok {
		return fmt.Errorf("a broker is already running (pid %d): make kafka-down first", pid)
	}
	dir := filepath.Join(root, ".kafka", "dev")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fmt.Println("starting Apache Kafka (the first time, Maven fetches the jars)...")
	b, err := realkafka.Start(realkafka.Options{Root: root, Dir: dir, Ports: realkafka.FixedPorts, Detach: true})
	if err != nil {
		return err
	}
	if err := os.WriteFile(pidFile(root), []byte(strconv.Itoa(b.PID())), 0o644); err != nil {
		return err
	}
	fmt.Printf(`Kafka is up in %v (pid %d, log %s)
  PLAINTEXT       %s      KAFKA_BROKERS=%s pythia-pipe run pipelines/orders.yaml
  SASL_PLAINTEXT  %s      PLAIN %s / %s, SCRAM-SHA-512 %s / %s
  SSL             %s      ca_file: %s
  SSL + client certificates %s  cert_file: %s, key_file: %s
stop it with make kafka-down
`, b.Started.Round(time.Millisecond), b.PID(), b.Log,
		b.Addr("plaintext"), b.Addr("plaintext"),
		b.Addr("sasl"), realkafka.PlainUser, realkafka.PlainPassword, realkafka.ScramUser, realkafka.ScramPassword,
		b.Addr("ssl"), b.TLS.CA, b.Addr("mtls"), b.TLS.ClientCert, b.TLS.ClientKey)
	return nil
}

func down(root string) error {
	pid, ok := running(root)
	if !ok {
		fmt.Println("no broker is running")
		os.Remove(pidFile(root))
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			os.Remove(pidFile(root))
			fmt.Printf("Kafka (pid %d) stopped\n", pid)
			return nil
		}
	}
	return errors.New("the broker did not stop within 60s of SIGTERM")
}
