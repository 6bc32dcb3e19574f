package metrics

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Wait is something the pipeline waits for while records are held: a stage's service or
// schema registry that does not answer, a sink's partition Kafka does not acknowledge, the
// source's commits or transaction.
type Wait struct {
	Name    string        // the stage or sink that waits; "" for the source (Kafka)
	Why     string        // what it waits for; the source's says how long too
	For     time.Duration // how long it has waited, to the second
	Held    string        // what it holds meanwhile: "12 records wait"; "" for the source
	Records int64         // records held, when the waiter counts them; -1 when it does not
}

// String is the wait as the progress line, /healthz and dev say it:
// "score (its service has failed every call for 40s; 12 records wait)".
func (w Wait) String() string {
	if w.Name == "" {
		return "Kafka: " + w.Why
	}
	return fmt.Sprintf("%s (%s for %v; %s)", w.Name, w.Why, w.For, w.Held)
}

// Who names the waiter: the stage or sink, or Kafka for the source.
func (w Wait) Who() string {
	if w.Name == "" {
		return "Kafka"
	}
	return w.Name
}

// Waits are what the pipeline waits for now, sorted by who waits: the stages whose service
// fails every call (their breaker open) or whose schema registry cannot be reached, the sinks
// whose partition Kafka has not acknowledged for sinkWaitSaid, and the source's commits or
// transaction.
func (m *Metrics) Waits() []Wait {
	if m.engine == nil {
		return nil
	}
	ms := func(n int64) time.Duration { return (time.Duration(n) * time.Millisecond).Round(time.Second) }
	var out []Wait
	for name, s := range m.engine.Stats() {
		switch {
		case s.Stage["breaker_state"] != 0:
			out = append(out, Wait{Name: name, Why: "its service has failed every call", For: ms(s.Stage["outage_ms"]),
				Held: fmt.Sprintf("%d records wait", s.Stage["waiting"]), Records: s.Stage["waiting"]})
		case s.Stage["registry_wait_ms"] > 0:
			out = append(out, Wait{Name: name, Why: "the schema registry has not answered", For: ms(s.Stage["registry_wait_ms"]),
				Held: fmt.Sprintf("%d records wait", s.Stage["registry_waiting"]), Records: s.Stage["registry_waiting"]})
		case ms(s.Stage["wait_ms"]) >= sinkWaitSaid:
			out = append(out, Wait{Name: name, Why: "Kafka has acknowledged none of a partition's writes", For: ms(s.Stage["wait_ms"]),
				Held: fmt.Sprintf("%d partitions held after refused writes", s.Stage["held"]), Records: -1})
		}
	}
	if m.source != nil {
		if s := m.source.Stats(); s.Waiting != "" {
			out = append(out, Wait{Why: s.Waiting, For: s.WaitingFor.Round(time.Second), Records: -1})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// waitingOn is Waits as text, for the progress line and /healthz.
func (m *Metrics) waitingOn() []string {
	var out []string
	for _, w := range m.Waits() {
		out = append(out, w.String())
	}
	return out
}

// How often a wait is said: once it has lasted WaitGrace (a service restarting within
// seconds is no news), then every WaitRepeat while it lasts, and once when it ends.
const (
	WaitGrace  = 5 * time.Second
	WaitRepeat = 10 * time.Second
)

// WaitNews is one line about a wait.
type WaitNews struct {
	Wait   Wait
	Phase  WaitPhase
	Lasted time.Duration // WaitOver: how long it lasted, to the second
}

// WaitPhase is where a wait stands when it is said.
type WaitPhase int

// The phases, in their order.
const (
	WaitBegan WaitPhase = iota // it has lasted WaitGrace
	WaitLasts                  // WaitRepeat after it was last said
	WaitOver                   // it is over
)

// String is the line: "waiting: score (its service has failed every call for 5s; 2 records
// wait)", "still waiting: ...", "done waiting: score, after 22s".
func (n WaitNews) String() string {
	switch n.Phase {
	case WaitBegan:
		return "waiting: " + n.Wait.String()
	case WaitLasts:
		return "still waiting: " + n.Wait.String()
	}
	return fmt.Sprintf("done waiting: %s, after %v", n.Wait.Who(), n.Lasted)
}

// SayWaits checks the waits every `every` until ctx ends and tells say each WaitNews (see
// WaitGrace); say is called from this goroutine only.
func (m *Metrics) SayWaits(ctx context.Context, every time.Duration, say func(WaitNews)) {
	t := time.NewTicker(every)
	defer t.Stop()
	teller := newWaitTeller(WaitGrace, WaitRepeat)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, n := range teller.step(now, m.Waits()) {
				say(n)
			}
		}
	}
}

// waitTeller decides, from the waits seen at each check, what to say.
type waitTeller struct {
	grace, repeat time.Duration
	seen          map[string]seenWait // by Who
}

type seenWait struct {
	last   Wait
	at     time.Time // when last seen
	saidAt time.Time // zero: not said yet
}

func newWaitTeller(grace, repeat time.Duration) *waitTeller {
	return &waitTeller{grace: grace, repeat: repeat, seen: map[string]seenWait{}}
}

// step takes the waits seen at now and returns the news, in the order of waits, the ends
// (sorted by who waited) last.
func (t *waitTeller) step(now time.Time, waits []Wait) []WaitNews {
	var news []WaitNews
	present := map[string]bool{}
	for _, w := range waits {
		who := w.Who()
		present[who] = true
		s := t.seen[who]
		if s.saidAt.IsZero() && w.For < t.grace {
			t.seen[who] = seenWait{last: w, at: now}
			continue
		}
		switch {
		case s.saidAt.IsZero():
			news = append(news, WaitNews{Wait: w, Phase: WaitBegan})
			s.saidAt = now
		case now.Sub(s.saidAt) >= t.repeat:
			news = append(news, WaitNews{Wait: w, Phase: WaitLasts})
			s.saidAt = now
		}
		s.last, s.at = w, now
		t.seen[who] = s
	}
	var ended []string
	for who := range t.seen {
		if !present[who] {
			ended = append(ended, who)
		}
	}
	sort.Strings(ended)
	for _, who := range ended {
		s := t.seen[who]
		delete(t.seen, who)
		if !s.saidAt.IsZero() {
			news = append(news, WaitNews{Wait: s.last, Phase: WaitOver, Lasted: (s.last.For + now.Sub(s.at)).Round(time.Second)})
		}
	}
	return news
}
