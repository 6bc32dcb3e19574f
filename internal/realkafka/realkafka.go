// Package realkafka starts a real Apache Kafka 4.x broker (single node, KRaft) from Maven
// Central jars on 127.0.0.1, for the end-to-end tests and `make kafka-up`. The recipe lives
// in kafka/ at the repository root: pom.xml (the jars), server.properties (a template),
// log4j2.properties. Listeners: PLAINTEXT, SASL_PLAINTEXT (PLAIN user alice, SCRAM-SHA-512
// user carol), SSL, and MTLS (SSL with required client certificates).
//
// StartCluster (cluster.go) starts a cluster from the same jars instead, for the failure
// tests and `make cluster-up`: a dedicated controller and three brokers (kafka/cluster.properties),
// with what those tests do to it (kill, pause, stop, restart a broker) and ask of it
// (clusterinfo.go: a partition's leader, the coordinators, replicas in sync). jvm.go is what
// both launch a Kafka process with.
package realkafka

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Users of the SASL listener.
const (
	PlainUser     = "alice"
	PlainPassword = "alice-Pl41n-secret"
	ScramUser     = "carol"
	ScramPassword = "carol-Scr4m-secret"
)

// Ports are the broker's listeners.
type Ports struct {
	Plaintext, Controller, SASL, SSL, MTLS int
}

// FixedPorts are the conventional ports of `make kafka-up`.
var FixedPorts = Ports{Plaintext: 9092, Controller: 9093, SASL: 9094, SSL: 9095, MTLS: 9096}

// Options configure Start.
type Options struct {
	Root  string // repository root (where kafka/ and .kafka/ are); found from the working directory when empty
	Dir   string // data folder; a new one under .kafka/ when empty
	Ports Ports  // zero: free ports are picked
	Log   func(format string, args ...any)
	// Detach lets the broker outlive the process that started it (make kafka-up); otherwise
	// it is stopped when that process dies, so that a crashed test leaves no JVM behind.
	Detach bool
}

// Broker is a running broker.
type Broker struct {
	Dir     string
	Ports   Ports
	TLS     TLSFiles
	Started time.Duration // launch to ready, the last (re)start
	Log     string        // the broker's output

	jvm jvm
}

// Addr is the address of a listener: "plaintext", "sasl", "ssl" or "mtls".
func (b *Broker) Addr(listener string) string {
	port := map[string]int{"plaintext": b.Ports.Plaintext, "sasl": b.Ports.SASL, "ssl": b.Ports.SSL, "mtls": b.Ports.MTLS}[listener]
	return "127.0.0.1:" + strconv.Itoa(port)
}

// FindRoot walks up from the working directory to the folder holding kafka/pom.xml.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "kafka", "pom.xml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("kafka/pom.xml not found above the working directory")
		}
		dir = parent
	}
}

// Libs resolves the broker's jars with Maven into .kafka/libs, once. Several processes may
// ask at the same time: each resolves into a folder of its own and the first to finish
// renames it into place.
func Libs(root string) (string, error) {
	libs := filepath.Join(root, ".kafka", "libs")
	pom, err := os.ReadFile(filepath.Join(root, "kafka", "pom.xml"))
	if err != nil {
		return "", err
	}
	resolved := func() bool {
		done, err := os.ReadFile(filepath.Join(libs, ".resolved"))
		return err == nil && bytes.Equal(done, pom)
	}
	if resolved() {
		return libs, nil
	}
	if err := os.MkdirAll(filepath.Dir(libs), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(libs), "libs-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("mvn", "-B", "-q", "-f", filepath.Join(root, "kafka", "pom.xml"),
		"org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("resolving the Kafka jars with Maven: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".resolved"), pom, 0o644); err != nil {
		return "", err
	}
	if resolved() { // another process was quicker
		return libs, nil
	}
	os.RemoveAll(libs) // an outdated set, from another pom
	if err := os.Rename(tmp, libs); err != nil && !resolved() {
		return "", err
	}
	return libs, nil
}

// Start formats a fresh KRaft store and starts the broker, waiting (up to 90 s) until it
// accepts connections.
func Start(o Options) (*Broker, error) {
	if err := defaults(&o.Root, &o.Log); err != nil {
		return nil, err
	}
	libs, err := Libs(o.Root)
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		if err := os.MkdirAll(filepath.Join(o.Root, ".kafka"), 0o755); err != nil {
			return nil, err
		}
		if o.Dir, err = os.MkdirTemp(filepath.Join(o.Root, ".kafka"), "broker-"); err != nil {
			return nil, err
		}
	}
	if o.Ports == (Ports{}) {
		p, err := freePorts(5)
		if err != nil {
			return nil, err
		}
		o.Ports = Ports{Plaintext: p[0], Controller: p[1], SASL: p[2], SSL: p[3], MTLS: p[4]}
	}
	b := &Broker{Dir: o.Dir, Ports: o.Ports, Log: filepath.Join(o.Dir, "broker.log")}
	b.jvm = jvm{name: "the broker", root: o.Root, props: filepath.Join(o.Dir, "server.properties"), log: b.Log, heap: "384m", deathSig: syscall.SIGTERM}
	if o.Detach {
		b.jvm.deathSig = 0 // survives `make kafka-up`
	}
	if b.TLS, err = writeTLS(filepath.Join(o.Dir, "tls")); err != nil {
		return nil, err
	}
	tmpl, err := os.ReadFile(filepath.Join(o.Root, "kafka", "server.properties"))
	if err != nil {
		return nil, err
	}
	props := strings.NewReplacer("@DATA@", o.Dir, "@PLAINTEXT_PORT@", strconv.Itoa(b.Ports.Plaintext),
		"@CONTROLLER_PORT@", strconv.Itoa(b.Ports.Controller), "@SASL_PORT@", strconv.Itoa(b.Ports.SASL),
		"@SSL_PORT@", strconv.Itoa(b.Ports.SSL), "@MTLS_PORT@", strconv.Itoa(b.Ports.MTLS),
		"@PLAIN_PASSWORD@", PlainPassword).Replace(string(tmpl))
	if err := os.WriteFile(b.jvm.props, []byte(props), 0o600); err != nil {
		return nil, err
	}
	if err := b.jvm.format(libs, clusterID(), "--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", ScramUser, ScramPassword)); err != nil {
		return nil, err
	}
	o.Log("formatted %s", o.Dir)
	return b, b.launch(libs)
}

// launch starts the JVM on the formatted store and waits (up to 90 s) until the broker
// accepts connections.
func (b *Broker) launch(libs string) error {
	began := time.Now()
	if err := b.jvm.start(libs); err != nil {
		return err
	}
	if err := b.jvm.await(90*time.Second, "accept connections", func() bool { return dials(b.Addr("plaintext")) }); err != nil {
		return err
	}
	b.Started = time.Since(began)
	return nil
}

// Stop stops the broker with SIGTERM (a controlled shutdown), killing it after 60 s.
func (b *Broker) Stop() error { return b.jvm.stop(60 * time.Second) }

// Restart starts the broker again on its data, after Stop.
func (b *Broker) Restart() error {
	libs, err := Libs(b.jvm.root)
	if err != nil {
		return err
	}
	return b.launch(libs)
}

// PID is the broker's process id.
func (b *Broker) PID() int { return b.jvm.pid() }

// clusterID is a KRaft cluster id: 16 random bytes, base64url without padding, not
// starting with '-'.
func clusterID() string {
	for {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		id := base64.RawURLEncoding.EncodeToString(b)
		if id[0] != '-' {
			return id
		}
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// defaults fills an unset repository root (found from the working directory) and log (none).
func defaults(root *string, log *func(string, ...any)) error {
	if *log == nil {
		*log = func(string, ...any) {}
	}
	if *root != "" {
		return nil
	}
	r, err := FindRoot()
	*root = r
	return err
}
