// Command kafkactl starts and stops the real Kafka broker of `make kafka-up` / `make
// kafka-down`: listeners on the conventional ports 9092-9096, data in .kafka/dev. With
// --cluster, the three-broker cluster of `make cluster-up` / `make cluster-down`: clients on
// 19092-19094, data in .kafka/cluster.
package main

import (
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
	args := os.Args[1:]
	cluster := len(args) == 2 && args[1] == "--cluster"
	if cluster {
		args = args[:1]
	}
	if len(args) != 1 || (args[0] != "up" && args[0] != "down") {
		fmt.Fprintln(os.Stderr, "usage: kafkactl up|down [--cluster]")
		os.Exit(2)
	}
	root, err := realkafka.FindRoot()
	if err == nil {
		switch {
		case args[0] == "up" && cluster:
			err = clusterUp(root)
		case args[0] == "up":
			err = up(root)
		case cluster:
			err = stop(clusterPidFile(root), "the cluster")
		default:
			err = stop(pidFile(root), "the broker")
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafkactl:", err)
		os.Exit(1)
	}
}

func pidFile(root string) string        { return filepath.Join(root, ".kafka", "dev.pid") }
func clusterPidFile(root string) string { return filepath.Join(root, ".kafka", "cluster.pid") }

// running returns the processes of a pid file (one per line) still alive.
func running(file string) []int {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var alive []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && syscall.Kill(pid, 0) == nil {
			alive = append(alive, pid)
		}
	}
	return alive
}

func up(root string) error {
	if pids := running(pidFile(root)); len(pids) > 0 {
		return fmt.Errorf("a broker is already running (pid %d): make kafka-down first", pids[0])
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

// stop stops the processes of a pid file with SIGTERM, one after the other in its order, and
// waits for each: a cluster's brokers first, each a controlled shutdown (its leaderships move
// to the others), then its controller, without which a broker's controlled shutdown never
// ends.
func stop(file, what string) error {
	pids := running(file)
	if len(pids) == 0 {
		fmt.Printf("%s is not running\n", what)
		os.Remove(file)
		return nil
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return err
		}
		for deadline := time.Now().Add(60 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: pid %d did not stop within 60s of SIGTERM", what, pid)
			}
		}
	}
	os.Remove(file)
	fmt.Printf("%s stopped (pid %s)\n", strings.ToUpper(what[:1])+what[1:], strings.Trim(fmt.Sprint(pids), "[]"))
	return nil
}

func clusterUp(root string) error {
	if pids := running(clusterPidFile(root)); len(pids) > 0 {
		return fmt.Errorf("a cluster is already running (pid %v): make cluster-down first", pids)
	}
	dir := filepath.Join(root, ".kafka", "cluster")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fmt.Println("starting a Kafka cluster: a controller and three brokers (the first time, Maven fetches the jars)...")
	began := time.Now()
	c, err := realkafka.StartCluster(realkafka.ClusterOptions{Root: root, Dir: dir, Ports: realkafka.ClusterFixedPorts, Detach: true})
	if err != nil {
		return err
	}
	var pids []string
	for _, n := range c.Brokers() {
		pids = append(pids, strconv.Itoa(n.PID()))
	}
	pids = append(pids, strconv.Itoa(c.Controller.PID()))
	if err := os.WriteFile(clusterPidFile(root), []byte(strings.Join(pids, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	bootstrap := strings.Join(c.Addrs(), ",")
	fmt.Printf("The cluster is up in %v (%v from launch; KRaft, replication factor 3, min.insync.replicas 2)\n",
		time.Since(began).Round(time.Millisecond), c.Started.Round(time.Millisecond))
	fmt.Printf("  bootstrap   %s\n              KAFKA_BROKERS=%s pythia-pipe run pipelines/orders.yaml\n", bootstrap, bootstrap)
	for _, n := range c.Brokers() {
		fmt.Printf("  broker %d    %s  internal 127.0.0.1:%d  pid %d  log %s\n", n.ID, n.Addr(), n.Internal, n.PID(), n.Log)
	}
	fmt.Printf("  controller  127.0.0.1:%d  pid %d  log %s\nstop it with make cluster-down\n", c.Controller.Port, c.Controller.PID(), c.Controller.Log)
	return nil
}
