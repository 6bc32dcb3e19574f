// Command registryctl starts and stops the schema registry of `make registry-up` / `make
// registry-down` (Apicurio Registry on 127.0.0.1:8081, its Confluent API at
// /apis/ccompat/v7, schemas in memory), its state in .registry/dev.json. `registryctl java`
// prints the Java it runs on or fails in one line; `registryctl fetch` fetches it (both for
// .ci/run).
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/registry"
)

func main() {
	cmds := map[string]func(root string) error{"up": up, "down": down, "java": java, "fetch": fetch}
	if len(os.Args) != 2 || cmds[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: registryctl up|down|java|fetch")
		os.Exit(2)
	}
	root, err := registry.FindRoot()
	if err == nil {
		err = cmds[os.Args[1]](root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "registryctl:", err)
		os.Exit(1)
	}
}

func java(string) error {
	j, err := registry.FindJava()
	if err != nil {
		return err
	}
	fmt.Printf("Java %d at %s (Apicurio Registry needs %d or newer)\n", j.Major, j.Path, registry.MinJava)
	return nil
}

func fetch(root string) error {
	began := time.Now()
	app, err := registry.App(root)
	if err != nil {
		return err
	}
	fmt.Printf("Apicurio Registry in %s (%v)\n", app, time.Since(began).Round(time.Millisecond))
	return nil
}

func up(root string) error {
	if s, ok := registry.ReadDevState(root); ok && isRegistry(s.PID) {
		return fmt.Errorf("a registry is already running (pid %d, %s): make registry-down first", s.PID, s.URL)
	}
	dir := filepath.Join(root, ".registry", "dev")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if !registry.Fetched(root) {
		fmt.Println("fetching Apicurio Registry from Maven Central (about 160 MB, once)...")
		if err := fetch(root); err != nil {
			return err
		}
	}
	fmt.Println("starting Apicurio Registry...")
	r, err := registry.Start(registry.Options{Root: root, Dir: dir, Port: registry.DevPort, Detach: true})
	if err != nil {
		return err
	}
	if err := registry.WriteDevState(root, r); err != nil {
		return err
	}
	fmt.Printf(`Apicurio Registry %s is up in %v (pid %d, Java %d, log %s)
  Confluent-compatible API  %s
  Apicurio's own API        http://127.0.0.1:%d/apis/registry/v3
  schemas are kept in memory: make registry-down forgets them
stop it with make registry-down
`, r.Version, r.Started.Round(time.Millisecond), r.PID(), r.Java.Major, r.Log, r.URL, r.Port)
	return nil
}

func down(root string) error {
	s, ok := registry.ReadDevState(root)
	if !ok || !isRegistry(s.PID) {
		fmt.Println("no registry is running")
		os.Remove(registry.DevStateFile(root))
		return nil
	}
	if err := syscall.Kill(s.PID, syscall.SIGTERM); err != nil {
		return err
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			return fmt.Errorf("the registry (pid %d) did not stop within 30s of SIGTERM", s.PID)
		case <-tick.C:
			if !isRegistry(s.PID) { // gone, or a zombie (whose cmdline is empty) not yet reaped
				os.Remove(registry.DevStateFile(root))
				fmt.Printf("Apicurio Registry (pid %d) stopped\n", s.PID)
				return nil
			}
		}
	}
}

// isRegistry says whether pid is still a registry's JVM, not a process that took its number.
func isRegistry(pid int) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte("quarkus-run.jar"))
}
