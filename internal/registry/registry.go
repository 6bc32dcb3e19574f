// Package registry starts a real schema registry on 127.0.0.1 for the end-to-end tests and
// `make registry-up`: Apicurio Registry 3.x, which speaks the Confluent API under
// /apis/ccompat/v7, from Maven Central (the recipe is registry/pom.xml at the repository
// root; the app is unpacked once into .registry/app). It runs on Java 21 or newer
// (FindJava) with in-memory storage: a restart forgets every schema, unless the registry
// was started Durable.
//
// Apicurio's Confluent API differs from Confluent's in a few places (TestConfluentAPI logs
// them): the global compatibility is NONE, not BACKWARD (Options.Args can change that); a
// subject without a level of its own reports the global one instead of 404; ?verbose=true
// adds no messages to a compatibility check; a lookup (POST /subjects/{subject}) answers
// without schemaType.
package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// API is the path of the Confluent-compatible API under the registry's address.
const API = "/apis/ccompat/v7"

// DevPort is the HTTP port of `make registry-up`: the Confluent registry's usual one.
const DevPort = 8081

// Options configure Start.
type Options struct {
	Root string // repository root (where registry/ and .registry/ are); found from the working directory when empty
	Dir  string // working folder (log, temporary files, durable storage); a new one under .registry/ when empty
	Port int    // HTTP port; a free one when zero (the management interface always gets a free one)
	Log  func(format string, args ...any)
	// Durable keeps the schemas in an H2 file under Dir instead of in memory, so that
	// Restart brings them back under the same ids.
	Durable bool
	// Args are more JVM arguments, before -jar: -Dapicurio.rules.global.compatibility=BACKWARD
	// gives the registry Confluent's default level (Apicurio's is NONE), which DELETE
	// /config then restores.
	Args []string
	// Detach lets the registry outlive the process that started it (make registry-up);
	// otherwise it is stopped when that process dies, so that a crashed test leaves no JVM
	// behind.
	Detach bool
}

// Registry is a running registry.
type Registry struct {
	URL            string // the Confluent-compatible API, http://127.0.0.1:PORT/apis/ccompat/v7
	Port           int
	ManagementPort int
	Version        string // Apicurio Registry's
	Java           Java
	Dir            string
	Log            string        // the registry's output
	Started        time.Duration // launch to ready, the last (re)start
	// Reused is set when Use found the registry of `make registry-up` answering: Stop
	// leaves it running.
	Reused bool

	o    Options
	app  string
	cmd  *exec.Cmd
	done chan struct{}
}

// FindRoot walks up from the working directory to the folder holding registry/pom.xml.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "registry", "pom.xml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("registry/pom.xml not found above the working directory")
		}
		dir = parent
	}
}

// Fetched says whether App has the registry already, for the current registry/pom.xml.
func Fetched(root string) bool {
	pom, err := os.ReadFile(filepath.Join(root, "registry", "pom.xml"))
	done, err2 := os.ReadFile(filepath.Join(root, ".registry", "app", ".resolved"))
	return err == nil && err2 == nil && bytes.Equal(done, pom)
}

// App fetches and unpacks the registry with Maven into .registry/app, once (again when
// registry/pom.xml changes). Several processes may ask at the same time: each unpacks into
// a folder of its own and the first to finish renames it into place.
func App(root string) (string, error) {
	app := filepath.Join(root, ".registry", "app")
	pom, err := os.ReadFile(filepath.Join(root, "registry", "pom.xml"))
	if err != nil {
		return "", err
	}
	resolved := func() bool { return Fetched(root) }
	if resolved() {
		return app, nil
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return "", errors.New("fetching Apicurio Registry needs Maven: apt-get install maven")
	}
	if err := os.MkdirAll(filepath.Dir(app), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(app), "fetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("mvn", "-B", "-q", "-f", filepath.Join(root, "registry", "pom.xml"),
		"org.apache.maven.plugins:maven-dependency-plugin:3.8.1:unpack", "-Dregistry.dir="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fetching Apicurio Registry with Maven: %v\n%s", err, out)
	}
	unpacked := filepath.Join(tmp, "app")
	if _, err := os.Stat(filepath.Join(unpacked, "quarkus-run.jar")); err != nil {
		return "", fmt.Errorf("Maven unpacked no quarkus-run.jar: %w", err)
	}
	if err := os.WriteFile(filepath.Join(unpacked, ".resolved"), pom, 0o644); err != nil {
		return "", err
	}
	if resolved() { // another process was quicker
		return app, nil
	}
	os.RemoveAll(app) // an outdated one, from another pom
	if err := os.Rename(unpacked, app); err != nil && !resolved() {
		return "", err
	}
	return app, nil
}

// Start starts a registry and waits (up to 90 s) until its Confluent API answers.
func Start(o Options) (*Registry, error) {
	if o.Root == "" {
		root, err := FindRoot()
		if err != nil {
			return nil, err
		}
		o.Root = root
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	java, err := FindJava()
	if err != nil {
		return nil, err
	}
	app, err := App(o.Root)
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		if err := os.MkdirAll(filepath.Join(o.Root, ".registry"), 0o755); err != nil {
			return nil, err
		}
		if o.Dir, err = os.MkdirTemp(filepath.Join(o.Root, ".registry"), "run-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	r := &Registry{Java: java, Dir: o.Dir, Log: filepath.Join(o.Dir, "registry.log"), o: o, app: app, Version: appVersion(app)}
	// Free ports are picked by listening and letting go: another process may take one in
	// between, and then the registry fails to bind. Try again with others (never with a
	// port the caller chose).
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		if r.Port, r.ManagementPort = o.Port, ports[1]; r.Port == 0 {
			r.Port = ports[0]
		}
		r.URL = fmt.Sprintf("http://127.0.0.1:%d%s", r.Port, API)
		if err = r.launch(); err == nil {
			return r, nil
		}
		if !errors.Is(err, errBind) || attempt == 3 {
			return nil, err
		}
		o.Log("registry: %v; trying other ports", err)
	}
}

// Use returns the registry of `make registry-up` when one is answering (Reused: Stop leaves
// it running), and otherwise starts one of its own (Start). Tests sharing a registry use
// subjects of their own.
func Use(o Options) (*Registry, error) {
	if o.Root == "" {
		root, err := FindRoot()
		if err != nil {
			return nil, err
		}
		o.Root = root
	}
	if s, ok := ReadDevState(o.Root); ok && Ready(s.URL) {
		return &Registry{URL: s.URL, Port: s.Port, ManagementPort: s.ManagementPort, Version: s.Version,
			Java: Java{Path: s.Java}, Dir: s.Dir, Log: s.Log, Reused: true}, nil
	}
	return Start(o)
}

var (
	errBind = errors.New("the registry could not listen")
	// Quarkus's words when it cannot listen.
	portInUse = regexp.MustCompile(`Port (\d+) seems to be in use`)
)

func (r *Registry) launch() error {
	logf, err := os.OpenFile(r.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{
		// A small heap and the quick compiler: a test registry holds a few schemas, and
		// starts about 0.7 s sooner with C1 only.
		"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError",
		"-Djava.io.tmpdir=" + filepath.Join(r.Dir, "tmp"), // Vert.x's file cache, imports
		"-Dquarkus.http.host=127.0.0.1", "-Dquarkus.http.port=" + strconv.Itoa(r.Port),
		// The management interface (health, metrics) is on at build time and cannot be
		// turned off; by default it listens on 0.0.0.0:9000.
		"-Dquarkus.management.host=127.0.0.1", "-Dquarkus.management.port=" + strconv.Itoa(r.ManagementPort),
		// Tests may delete the subjects they made (Apicurio refuses deletes by default).
		"-Dapicurio.rest.deletion.artifact.enabled=true", "-Dapicurio.rest.deletion.artifact-version.enabled=true",
		"-Dapicurio.rest.deletion.group.enabled=true",
	}
	if r.o.Durable {
		args = append(args, "-Dapicurio.datasource.url=jdbc:h2:file:"+filepath.Join(r.Dir, "h2", "registry"))
	}
	args = append(append(args, r.o.Args...), "-jar", filepath.Join(r.app, "quarkus-run.jar"))
	cmd := exec.Command(r.Java.Path, args...)
	cmd.Dir = r.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if r.o.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // survives `make registry-up`
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // dies with its test
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", r.Java.Path, err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(r.done) }()
	deadline := time.NewTimer(90 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			log := tail(r.Log, 30)
			if m := portInUse.FindStringSubmatch(log); m != nil {
				return fmt.Errorf("%w: 127.0.0.1:%s is in use by another process (ss -ltnp | grep %[2]s); log %s", errBind, m[1], r.Log)
			}
			return fmt.Errorf("the registry exited while starting (exit %d); the end of %s:\n%s", cmd.ProcessState.ExitCode(), r.Log, log)
		case <-deadline.C:
			r.Stop()
			return fmt.Errorf("the registry did not answer %s/subjects within 90s; the end of %s:\n%s", r.URL, r.Log, tail(r.Log, 30))
		case <-tick.C:
			if Ready(r.URL) {
				r.Started = time.Since(began)
				r.o.Log("registry: Apicurio Registry %s ready at %s in %v", r.Version, r.URL, r.Started.Round(time.Millisecond))
				return nil
			}
		}
	}
}

// Ready says whether a Confluent-compatible API answers GET /subjects at url.
func Ready(url string) bool {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url + "/subjects")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop stops the registry with SIGTERM, killing it after 30 s. A reused registry is left
// running.
func (r *Registry) Stop() error {
	if r.cmd == nil {
		return nil
	}
	select {
	case <-r.done:
		return nil
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
		return errors.New("the registry did not stop within 30s of SIGTERM and was killed")
	}
}

// Close stops the registry and removes its folder, unless it was reused.
func (r *Registry) Close() {
	if r.Reused {
		return
	}
	r.Stop()
	os.RemoveAll(r.Dir)
}

// Restart starts the registry again on the same ports, after Stop. Its schemas are back
// only if it was started Durable.
func (r *Registry) Restart() error {
	if r.cmd == nil {
		return errors.New("this registry was not started here")
	}
	return r.launch()
}

// PID is the registry's process id (0 for a reused one).
func (r *Registry) PID() int {
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// DevState is what `make registry-up` leaves in .registry/dev.json for `make registry-down`
// and for Use.
type DevState struct {
	PID            int    `json:"pid"`
	URL            string `json:"url"`
	Port           int    `json:"port"`
	ManagementPort int    `json:"management_port"`
	Version        string `json:"version"`
	Java           string `json:"java"`
	Dir            string `json:"dir"`
	Log            string `json:"log"`
}

// DevStateFile is where the state of `make registry-up` is kept.
func DevStateFile(root string) string { return filepath.Join(root, ".registry", "dev.json") }

// ReadDevState reads the state of `make registry-up`; ok only when its process is alive.
func ReadDevState(root string) (DevState, bool) {
	var s DevState
	b, err := os.ReadFile(DevStateFile(root))
	if err != nil || json.Unmarshal(b, &s) != nil || s.PID <= 0 {
		return s, false
	}
	return s, syscall.Kill(s.PID, 0) == nil
}

// WriteDevState records a registry started by `make registry-up`.
func WriteDevState(root string, r *Registry) error {
	b, err := json.MarshalIndent(DevState{PID: r.PID(), URL: r.URL, Port: r.Port, ManagementPort: r.ManagementPort,
		Version: r.Version, Java: r.Java.Path, Dir: r.Dir, Log: r.Log}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(DevStateFile(root), append(b, '\n'), 0o644)
}

// appVersion reads Apicurio Registry's version from the name of its jar in app/.
func appVersion(app string) string {
	jars, _ := filepath.Glob(filepath.Join(app, "app", "apicurio-registry-app-*.jar"))
	if len(jars) != 1 {
		return "(unknown version)"
	}
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(jars[0]), "apicurio-registry-app-"), ".jar")
}

// freePorts picks n free ports on 127.0.0.1, holding them all until every one is picked.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
