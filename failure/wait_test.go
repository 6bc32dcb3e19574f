package failure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for attempt, base := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 10: 5 * time.Second} {
		for i := 0; i < 50; i++ {
			d := Backoff(attempt, 100*time.Millisecond, 5*time.Second, 2, 0.2)
			if d < base*8/10 || d > base*12/10 {
				t.Fatalf("attempt %d: %v outside %v ± 20%%", attempt, d, base)
			}
		}
	}
}

// Without jitter the waits are exact: they grow by the multiplier and stop at max, however
// many attempts there were.
func TestBackoffWithoutJitter(t *testing.T) {
	for _, c := range []struct {
		attempt     int
		initial     time.Duration
		max         time.Duration
		multiplier  float64
		want        time.Duration
		description string
	}{
		{1, 100 * time.Millisecond, time.Second, 2, 100 * time.Millisecond, "the first wait is initial"},
		{4, 100 * time.Millisecond, time.Second, 2, 800 * time.Millisecond, "doubling"},
		{5, 100 * time.Millisecond, time.Second, 2, time.Second, "capped"},
		{5000, 100 * time.Millisecond, time.Second, 2, time.Second, "no overflow after many attempts"},
		{1, 500 * time.Millisecond, 200 * time.Millisecond, 2, 200 * time.Millisecond, "max below initial"},
		{3, 200 * time.Millisecond, 10 * time.Second, 1.5, 450 * time.Millisecond, "any multiplier"},
		{7, time.Second, 10 * time.Second, 1, time.Second, "multiplier 1: constant"},
	} {
		if got := Backoff(c.attempt, c.initial, c.max, c.multiplier, 0); got != c.want {
			t.Errorf("%s: Backoff(%d, %v, %v, %v, 0) = %v, want %v", c.description, c.attempt, c.initial, c.max, c.multiplier, got, c.want)
		}
	}
}

type netTimeout struct{ timeout bool }

func (e netTimeout) Error() string   { return "i/o" }
func (e netTimeout) Timeout() bool   { return e.timeout }
func (e netTimeout) Temporary() bool { return false }

func TestIsTimeout(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), true},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, true},
		{netTimeout{true}, true},
		{netTimeout{false}, false},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{context.Canceled, false},
		{errors.New("timeout"), false},
		{nil, false},
	} {
		if got := IsTimeout(c.err); got != c.want {
			t.Errorf("IsTimeout(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
