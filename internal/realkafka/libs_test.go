//go:build e2e

package realkafka

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Several processes (test packages run in parallel) may resolve the jars at once.
func TestLibsConcurrently(t *testing.T) {
	root, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		t.Fatal("Maven is needed: apt-get install maven")
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = Libs(root) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	jars, _ := filepath.Glob(filepath.Join(root, ".kafka", "libs", "kafka_2.13-*.jar"))
	if len(jars) != 1 {
		t.Fatalf("kafka_2.13 jar not in place: %v", jars)
	}
	if _, err := os.Stat(filepath.Join(root, ".kafka", "libs", ".resolved")); err != nil {
		t.Fatal(err)
	}
}
