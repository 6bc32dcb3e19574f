package metrics

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/engine"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

type engineStats engine.Stats

func (s engineStats) Stats() engine.Stats { return engine.Stats(s) }

type sourceStats sources.Stats

func (s sourceStats) Stats() sources.Stats { return sources.Stats(s) }

// Each waiter is named with why, for how long and what it holds; a sink only from 5 s.
func TestWaits(t *testing.T) {
	cases := []struct {
		name   string
		stats  engine.Stats
		source sources.Stats
		want   []string
	}{
		{"an enrich's breaker open", engine.Stats{"score": {Stage: map[string]int64{"breaker_state": 2, "outage_ms": 40_400, "waiting": 2}}},
			sources.Stats{}, []string{"score (its service has failed every call for 40s; 2 records wait)"}},
		{"a decode's registry down", engine.Stats{"parse": {Stage: map[string]int64{"registry_wait_ms": 7_000, "registry_waiting": 4}}},
			sources.Stats{}, []string{"parse (the schema registry has not answered for 7s; 4 records wait)"}},
		{"a sink, past 5 s", engine.Stats{"out": {Stage: map[string]int64{"wait_ms": 6_000, "held": 1}}}, sources.Stats{},
			[]string{"out (Kafka has acknowledged none of a partition's writes for 6s; 1 partitions held after refused writes)"}},
		{"a sink, under 5 s", engine.Stats{"out": {Stage: map[string]int64{"wait_ms": 4_000}}}, sources.Stats{}, nil},
		{"the source", engine.Stats{}, sources.Stats{Waiting: "offset commits, failing for 9s", WaitingFor: 9 * time.Second},
			[]string{"Kafka: offset commits, failing for 9s"}},
		{"nothing waits", engine.Stats{"score": {Stage: map[string]int64{"breaker_state": 0, "waiting": 0}}, "parse": {Stage: map[string]int64{"registry_wait_ms": 0}}},
			sources.Stats{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &Metrics{engine: engineStats(c.stats), source: sourceStats(c.source)}
			var got []string
			for _, w := range m.Waits() {
				got = append(got, w.String())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// A wait is said once it has lasted the grace, then every repeat, and once when it ends; one
// that ends within the grace is never said.
func TestWaitTeller(t *testing.T) {
	score := func(d time.Duration, n int64) Wait {
		return Wait{Name: "score", Why: "its service has failed every call", For: d, Held: "2 records wait", Records: n}
	}
	sink := func(d time.Duration) Wait {
		return Wait{Name: "out", Why: "Kafka has acknowledged none of a partition's writes", For: d, Held: "0 partitions held after refused writes", Records: -1}
	}
	type check struct {
		at    time.Duration // since the start
		waits []Wait
		says  []string
	}
	cases := []struct {
		name   string
		checks []check
	}{
		{"an outage of 22 s", []check{
			{1 * time.Second, []Wait{score(time.Second, 2)}, nil},
			{4 * time.Second, []Wait{score(4*time.Second, 2)}, nil},
			{5 * time.Second, []Wait{score(5*time.Second, 2)}, []string{"waiting: score (its service has failed every call for 5s; 2 records wait)"}},
			{14 * time.Second, []Wait{score(14*time.Second, 2)}, nil},
			{15 * time.Second, []Wait{score(15*time.Second, 3)}, []string{"still waiting: score (its service has failed every call for 15s; 2 records wait)"}},
			{21 * time.Second, []Wait{score(21*time.Second, 3)}, nil},
			{22 * time.Second, nil, []string{"done waiting: score, after 22s"}},
			{40 * time.Second, nil, nil},
		}},
		{"a blip within the grace", []check{
			{1 * time.Second, []Wait{score(time.Second, 1)}, nil},
			{3 * time.Second, nil, nil},
		}},
		{"a wait already long when first seen", []check{
			{1 * time.Second, []Wait{sink(6 * time.Second)}, []string{"waiting: out (Kafka has acknowledged none of a partition's writes for 6s; 0 partitions held after refused writes)"}},
		}},
		{"two waits, one ending", []check{
			{5 * time.Second, []Wait{sink(5 * time.Second), score(5*time.Second, 2)}, []string{
				"waiting: out (Kafka has acknowledged none of a partition's writes for 5s; 0 partitions held after refused writes)",
				"waiting: score (its service has failed every call for 5s; 2 records wait)"}},
			{6 * time.Second, []Wait{score(6*time.Second, 2)}, []string{"done waiting: out, after 6s"}},
		}},
		{"the source", []check{
			{5 * time.Second, []Wait{{Why: "offset commits, failing for 5s", For: 5 * time.Second, Records: -1}}, []string{"waiting: Kafka: offset commits, failing for 5s"}},
			{7 * time.Second, nil, []string{"done waiting: Kafka, after 7s"}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			teller := newWaitTeller(WaitGrace, WaitRepeat)
			for _, ch := range c.checks {
				var says []string
				for _, n := range teller.step(start.Add(ch.at), ch.waits) {
					says = append(says, n.String())
				}
				if strings.Join(says, "\n") != strings.Join(ch.says, "\n") {
					t.Errorf("at %v: said %q, want %q", ch.at, says, ch.says)
				}
			}
		})
	}
}

// SayWaits says what the engine waits for, from its own goroutine, and stops with its ctx.
func TestSayWaits(t *testing.T) {
	m := &Metrics{engine: engineStats{"score": {Stage: map[string]int64{"breaker_state": 2, "outage_ms": 12_000, "waiting": 3}}}}
	var mu sync.Mutex
	var said []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.SayWaits(ctx, time.Millisecond, func(n WaitNews) { mu.Lock(); said = append(said, n.String()); mu.Unlock() })
		close(done)
	}()
	testproc.WaitFor(t, 10*time.Second, "a line", func() bool { mu.Lock(); defer mu.Unlock(); return len(said) > 0 })
	cancel()
	<-done
	if len(said) != 1 || said[0] != "waiting: score (its service has failed every call for 12s; 3 records wait)" {
		t.Errorf("said %q", said)
	}
}
