package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pythia-pipe/pythia-pipe/engine"

	"github.com/sourcegraph/conc"

	"github.com/pythia-pipe/pythia-pipe/metrics"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

type runOptions struct{ level, metricsAddr, pprofAddr string }

func (o *runOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&o.level, "log-level", "info", "`LEVEL` of the logs: debug, info, warn or error")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics, /healthz and /readyz at `ADDR`, e.g. :9100 (default: the file's metrics.addr)")
	fs.StringVar(&o.pprofAddr, "pprof", "", "serve Go's CPU, heap and goroutine profiles (/debug/pprof/) at `ADDR`, e.g. 127.0.0.1:6060")
	return fs
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	var o runOptions
	fs := o.flags()
	fs.SetOutput(stderr)
	p, log, code := prepare(fs, args, &o.level, "pythia-pipe run FILE [--metrics-addr ADDR] [--pprof ADDR] [--log-level LEVEL]", pipeline.Options{}, stderr)
	if code != exitOK {
		return code
	}
	ctx, stop := signalContext(log)
	defer stop()
	log = log.With("pipeline", p.Name)
	run, err := engine.ConnectKafka(p, log)
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	defer limitMemory(run, p, log)()
	if o.metricsAddr == "" {
		o.metricsAddr = p.MetricsAddr
	}
	_, _, stopObserving, err := observe(p, run, o.metricsAddr, log, logWait(log))
	if err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: metrics: %v\n", err)
		return exitInvalid
	}
	defer stopObserving()
	if o.pprofAddr != "" {
		url, stopPprof, err := servePprof(o.pprofAddr)
		if err != nil {
			fmt.Fprintf(stderr, "pythia-pipe: pprof: %v\n", err)
			return exitInvalid
		}
		defer stopPprof()
		log.Info("profiles served", "url", url)
	}
	log.Info("running", "brokers", strings.Join(p.Kafka.Brokers, ","), "group", p.KafkaSource().Group, "topics", strings.Join(p.KafkaSource().Topics, ","))
	if err := run.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "pythia-pipe: %v\n", err)
		return exitInvalid
	}
	log.Info("stopped cleanly")
	return exitOK
}

// limitMemory bounds the memory of run, of pipeline p (KafkaRun.TuneMemory) and, for one
// keeping state, gives the stores' C memory freed back to the system (trimMalloc). The
// function it returns undoes both.
func limitMemory(run *engine.KafkaRun, p *pipeline.Pipeline, log *slog.Logger) (stop func()) {
	restore := run.TuneMemory(log)
	if p.MemoryBudget() == 0 || !p.KeepsState() {
		return restore
	}
	trimmed := trimMalloc()
	return func() {
		trimmed()
		restore()
	}
}

// observe puts the metrics around a run: the observer, the HTTP endpoints when addr is set
// (url says where), the progress line, and what waits told to say (metrics.SayWaits). stop
// ends what it started.
func observe(p *pipeline.Pipeline, run *engine.KafkaRun, addr string, log *slog.Logger, say func(metrics.WaitNews)) (m *metrics.Metrics, url string, stop func(), err error) {
	m = metrics.New(p)
	run.Engine.Observe(m)
	m.Watch(run.Engine, run.Source)
	ctx, cancel := context.WithCancel(context.Background())
	var wg conc.WaitGroup
	if addr != "" {
		bound, done, err := m.Serve(ctx, addr)
		if err != nil {
			cancel()
			return nil, "", nil, err
		}
		url = "http://" + bound
		log.Info("metrics served", "url", url+"/metrics", "health", url+"/healthz", "ready", url+"/readyz")
		wg.Go(func() {
			if err := <-done; err != nil {
				log.Error("metrics server", "err", err)
			}
		})
	}
	if p.Progress > 0 {
		wg.Go(func() { m.Progress(ctx, log, p.Progress) })
	}
	wg.Go(func() { m.SayWaits(ctx, waitCheck, say) })
	return m, url, func() { cancel(); wg.Wait() }, nil
}

// waitCheck is how often waits are looked at, for metrics.SayWaits.
var waitCheck = time.Second

// logWait says waits as warnings, so that run's default level shows them.
func logWait(log *slog.Logger) func(metrics.WaitNews) {
	return func(n metrics.WaitNews) {
		switch {
		case n.Phase == metrics.WaitBegan && n.Wait.Name == "": // the source on Kafka: its commits, join or transaction; no stage holds records
			log.Warn("waiting", "waiting_on", n.Wait.String())
		case n.Phase == metrics.WaitBegan:
			log.Warn("waiting: records are held until it answers again; none is dead-lettered", "waiting_on", n.Wait.String())
		case n.Phase == metrics.WaitLasts:
			log.Warn("still waiting", "waiting_on", n.Wait.String())
		default:
			log.Warn("done waiting", "on", n.Wait.Who(), "after", n.Lasted.String())
		}
	}
}

// signalContext ends at SIGINT or SIGTERM (a graceful drain); a second signal exits at once.
func signalContext(log *slog.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			log.Info("draining: finishing records in flight and committing (signal again to stop at once)", "signal", s.String())
			cancel()
		case <-done:
			return
		}
		select {
		case <-sigs:
			log.Warn("second signal: stopping now; records in flight will be read again")
			os.Exit(exitInvalid)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// newLogger logs text to a terminal and JSON otherwise.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}
