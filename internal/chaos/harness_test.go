//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// binary is the pythia-pipe binary under test, built once by TestMain (without the race
// detector: the suite runs the pipeline at a steady rate for minutes on a loaded machine).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pythia-chaos")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if binary, err = testproc.Build("../..", dir, false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	closeWorld()
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos report:", err)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitFor polls cond until it holds or d passes.
var waitFor = testproc.WaitFor

// waitUntil is waitFor with a context's end as a failure too.
func waitUntil(ctx context.Context, t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	waitFor(t, d, what, func() bool { return ctx.Err() != nil || cond() })
	if ctx.Err() != nil {
		t.Fatalf("%s: %v", what, ctx.Err())
	}
}

// hold lets a fault last d, or ends early (false) once ctx does. A fault's length is part of
// the scenario, not a wait for something to happen: the suite waits on conditions.
func hold(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// topicName makes s usable in a topic or group name.
func topicName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}
