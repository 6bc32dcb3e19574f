//go:build chaos

package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sample is what the pipeline said of itself at one moment: its metrics and /healthz.
type sample struct {
	at      time.Time
	healthy bool   // /healthz answered 200
	health  string // what /healthz said
	up      bool   // the metrics endpoint answered at all
	metrics map[string]float64
}

// observer polls a pipeline's /metrics and /healthz every interval until stopped.
type observer struct {
	addr    string
	mu      sync.Mutex
	samples []sample
	stop    context.CancelFunc
	done    chan struct{}
}

func observe(addr string, interval time.Duration) *observer {
	ctx, cancel := context.WithCancel(context.Background())
	o := &observer{addr: addr, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		client := &http.Client{Timeout: time.Second} // a Kubernetes probe's default
		for {
			s := o.poll(client)
			o.mu.Lock()
			o.samples = append(o.samples, s)
			o.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return o
}

// close stops the polling and waits for it.
func (o *observer) close() {
	o.stop()
	<-o.done
}

func (o *observer) poll(client *http.Client) sample {
	s := sample{at: time.Now()}
	if resp, err := client.Get("http://" + o.addr + "/healthz"); err == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		s.healthy, s.health = resp.StatusCode == http.StatusOK, strings.TrimSpace(string(body))
	} else {
		s.health = "no answer: " + err.Error()
	}
	resp, err := client.Get("http://" + o.addr + "/metrics")
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	s.up, s.metrics = true, parseMetrics(resp.Body)
	return s
}

// parseMetrics reads Prometheus's text format into the sum of each metric's series by name
// (pythia_pipe_ dropped), the largest of them by "max:"+name (a gauge per sink is not to be
// summed), and by name{label="value"} for the labels of each series.
func parseMetrics(r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "pythia_pipe_") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		series := strings.TrimPrefix(line[:sp], "pythia_pipe_")
		name, labels, _ := strings.Cut(series, "{")
		out[name] += v
		if m, ok := out["max:"+name]; !ok || v > m {
			out["max:"+name] = v
		}
		for _, l := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
			if l != "" {
				out[name+"{"+l+"}"] += v
			}
		}
	}
	return out
}

// during is the samples taken between from and to.
func (o *observer) during(from, to time.Time) []sample {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []sample
	for _, s := range o.samples {
		if !s.at.Before(from) && !s.at.After(to) {
			out = append(out, s)
		}
	}
	return out
}

// maxOf is the largest value of metric among samples.
func maxOf(samples []sample, metric string) float64 {
	m := 0.0
	for _, s := range samples {
		m = max(m, s.metrics[metric])
	}
	return m
}

// growth is how much a counter grew over samples.
func growth(samples []sample, metric string) float64 {
	if len(samples) == 0 {
		return 0
	}
	first, last := samples[0].metrics[metric], samples[len(samples)-1].metrics[metric]
	for _, s := range samples { // the first sample may be from before the endpoint answered
		if s.up {
			first = s.metrics[metric]
			break
		}
	}
	return last - first
}

// unhealthy counts the samples in which /healthz did not answer 200.
func unhealthy(samples []sample) int {
	n := 0
	for _, s := range samples {
		if !s.healthy {
			n++
		}
	}
	return n
}

// saidHealth counts the samples in which /healthz said that the pipeline waits for a
// service, or is unhealthy; failed is what the first that did not answer 200 said.
func saidHealth(samples []sample) (n int, failed string) {
	for _, s := range samples {
		if s.health != "" && s.health != "ok" {
			n++
		}
		if !s.healthy && failed == "" {
			failed = s.health
		}
	}
	return n, failed
}

// logLine is the part of a JSON log line of the pipeline that the suite reads.
type logLine struct {
	Time      time.Time `json:"time"`
	Level     string    `json:"level"`
	Msg       string    `json:"msg"`
	WaitingOn string    `json:"waiting_on"` // the progress line's
}

// logLines are the pipeline's JSON log lines between from and to (other output is skipped).
func logLines(output string, from, to time.Time) []logLine {
	var out []logLine
	for _, line := range strings.Split(output, "\n") {
		var l logLine
		if json.Unmarshal([]byte(line), &l) != nil || l.Time.Before(from) || l.Time.After(to) {
			continue
		}
		out = append(out, l)
	}
	return out
}

// told is what the pipeline's log said between two times: its warn and error lines (and the
// first one's message), and its progress lines that named what it waits on.
type told struct {
	warnings, waiting int
	first             string
}

func toldBetween(output string, from, to time.Time) told {
	var t told
	for _, l := range logLines(output, from, to) {
		switch {
		case l.Level == "WARN" || l.Level == "ERROR":
			if t.warnings == 0 {
				t.first = l.Msg
			}
			t.warnings++
		case l.Msg == "progress" && l.WaitingOn != "":
			t.waiting++
		}
	}
	return t
}
