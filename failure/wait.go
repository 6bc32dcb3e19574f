package failure

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"time"
)

// Backoff is the one formula for waiting out the world's faults: the wait before attempt+1 is
// initial·multiplier^(attempt-1), at most max, spread by ±jitter (a fraction of it; 0: none),
// so that many waiters do not all try again at once. Retry stages, the sinks' refused writes
// and topic lookups, the clients' own retries and the breaker's probes all wait by it.
func Backoff(attempt int, initial, max time.Duration, multiplier, jitter float64) time.Duration {
	d := max
	if f := float64(initial) * math.Pow(multiplier, float64(attempt-1)); f < float64(max) {
		d = time.Duration(f)
	}
	if jitter > 0 {
		d = time.Duration(float64(d) * (1 + jitter*(2*rand.Float64()-1))) // #nosec G404 -- jitter, not security
	}
	return d
}

// IsTimeout reports whether err is a timeout: a deadline that passed, or a network call that
// timed out. It is the one test of it: retry_on's timeout class, an HTTP lookup's failures and
// the explanation of a broker that does not answer all ask it.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
