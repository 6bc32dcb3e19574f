package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pythia-pipe/pythia-pipe/sources"
)

// Handler serves /metrics, /healthz (the process works: 503 once a partition has stalled,
// unless a stage or sink waits for its service to come back, which a restart would not cure;
// 200 "ok: waiting for a service: ..." while one waits) and /readyz (the group is joined,
// with partitions or with none to own).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		why := m.stalled()
		switch waiting := m.waitingOn(); {
		case why != "" && len(waiting) > 0:
			// Stalled behind a service that is down: a restart would not bring it back.
			fmt.Fprintf(w, "ok: waiting for a service: %s; meanwhile %s\n", strings.Join(waiting, "; "), why)
		case why != "":
			http.Error(w, "unhealthy: "+why, http.StatusServiceUnavailable)
		case len(waiting) > 0:
			fmt.Fprintf(w, "ok: waiting for a service: %s\n", strings.Join(waiting, "; "))
		default:
			w.Write([]byte("ok\n"))
		}
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if m.source == nil || !m.source.Stats().Joined {
			http.Error(w, "not ready: the consumer group is not joined yet", http.StatusServiceUnavailable)
			return
		}
		if r := m.restoring(); r != "" {
			http.Error(w, "not ready: restoring "+r, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

// sinkWaitSaid is how long a sink's partition must have waited for the broker before the
// progress line and /healthz name it: longer than a leader's failover takes.
const sinkWaitSaid = 5 * time.Second

// stalled names the partitions whose commit point has not moved for stall_timeout while
// records are pending, or "" when none has stalled.
func (m *Metrics) stalled() string {
	if m.source == nil {
		return ""
	}
	var why []string
	for name, p := range m.source.Stats().Partitions {
		if p.Stalled {
			why = append(why, fmt.Sprintf("partition %s has not committed for longer than stall_timeout: %d records pending, the oldest read %v ago",
				name, p.Pending, p.OldestPending.Round(time.Second)))
		}
	}
	sort.Strings(why)
	return strings.Join(why, "; ")
}

// Serve listens on addr and serves Handler until ctx ends; it returns the address it
// listens on (addr may end in :0) once listening, and a channel that reports the server's end.
func (m *Metrics) Serve(ctx context.Context, addr string) (string, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { // owned by Serve's caller through ctx; it reports its end on done
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return ln.Addr().String(), done, nil
}

// Progress logs, every interval until ctx ends, what went in and out per second, the lag,
// what is pending and what went to the DLQ, so that a person sees the pipeline is alive.
func (m *Metrics) Progress(ctx context.Context, log *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastIn, lastOut int64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			var in, out, dlq, lag, pending int64
			for _, s := range m.engine.Stats() {
				switch s.Kind {
				case "sink":
					out += s.Acked
				case "dlq":
					dlq = s.Acked
				}
			}
			src := m.source.Stats()
			for _, p := range src.Partitions {
				lag += p.Lag
			}
			pending = src.Pending
			in = m.read()
			secs := now.Sub(last).Seconds()
			attrs := []any{"in_per_s", int64(float64(in-lastIn) / secs), "out_per_s", int64(float64(out-lastOut) / secs),
				"lag", lag, "pending", pending, "dlq", dlq, "partitions", src.Assigned}
			if src.Aborts > 0 {
				attrs = append(attrs, "txn_aborted", src.Aborts, "txn_aborted_by", abortsText(src.AbortsBy), "txn_committed", src.Commits)
			}
			if waiting := m.waitingOn(); len(waiting) > 0 {
				attrs = append(attrs, "waiting_on", strings.Join(waiting, "; "))
			}
			if r := m.restoring(); r != "" {
				attrs = append(attrs, "restoring", r)
			}
			log.Info("progress", attrs...)
			lastIn, lastOut, last = in, out, now
		}
	}
}

// restoring names the stateful stages whose stores are being restored from their changelogs,
// with the records restored so far: "stage once: 2 partitions, 120000 records restored";
// "" when none is.
func (m *Metrics) restoring() string {
	if m.engine == nil {
		return ""
	}
	var parts []string
	for name, s := range m.engine.Stats() {
		if n := s.Stage["restoring"]; n > 0 {
			parts = append(parts, fmt.Sprintf("stage %s: %d partitions, %d records restored", name, n, s.Stage["restored"]))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// abortsText is the aborted transactions by reason, for the progress line: "deadline=2 write=1".
func abortsText(by map[string]int64) string {
	var parts []string
	for _, reason := range sources.AbortReasons {
		if n := by[reason]; n > 0 {
			parts = append(parts, reason+"="+strconv.FormatInt(n, 10))
		}
	}
	return strings.Join(parts, " ")
}

// read is how many records the first stages (or sinks, without stages) received: the input.
func (m *Metrics) read() int64 {
	var in int64
	for _, name := range m.entry {
		s := m.engine.Stats()[name]
		in += s.Received + s.Acked + s.Failed
	}
	return in
}
