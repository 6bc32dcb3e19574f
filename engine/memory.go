package engine

import (
	"context"
	"sync"

	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
)

// MemorySource feeds records held in memory, in batches, then waits until every one is
// settled (or ctx ends). It is the source of unit tests, benchmarks and `pythia-pipe test`.
type MemorySource struct {
	Records []*record.Record
	Batch   int // records per delivery; default 64

	mu      sync.Mutex
	settled map[uint64]int // how often each record was settled (must be once)
	all     chan struct{}
}

// Settle implements record.Settler.
func (m *MemorySource) Settle(seq uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settled[seq]++
	if len(m.settled) == len(m.Records) && m.all != nil {
		close(m.all)
		m.all = nil
	}
}

// Run delivers the records and returns when all are settled or ctx ends.
func (m *MemorySource) Run(ctx context.Context, in sources.Intake) error {
	m.mu.Lock()
	m.settled = map[uint64]int{}
	all := make(chan struct{})
	m.all = all
	if len(m.Records) == 0 {
		close(all)
		m.all = nil
	}
	m.mu.Unlock()
	size := m.Batch
	if size <= 0 {
		size = 64
	}
	for i := 0; i < len(m.Records); i += size {
		end := min(i+size, len(m.Records))
		batch := make([]*record.Record, 0, end-i)
		for j := i; j < end; j++ {
			r := m.Records[j]
			if r.OrigKey == nil {
				r.OrigKey = r.Key
			}
			if r.OrigHeaders == nil {
				r.OrigHeaders = r.Headers
			}
			r.Track = record.NewTracker(m, uint64(j))
			batch = append(batch, r)
		}
		if err := in.Deliver(ctx, batch); err != nil {
			return nil
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
	}
	return nil
}

// Settled reports how many records were settled, and whether any was settled twice.
func (m *MemorySource) Settled() (n int, twice bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.settled {
		twice = twice || c > 1
	}
	return len(m.settled), twice
}

// MemorySinks collects what a pipeline writes, by sink name ("dlq" for the DLQ).
type MemorySinks struct {
	mu  sync.Mutex
	Got map[string][]*record.Record
	// Fail, when set, decides the outcome of a write: nil acknowledges it.
	Fail func(sink string, rec *record.Record) error
}

// Open is an OpenSink.
func (m *MemorySinks) Open(name string, _ sinks.Compiled, report sinks.Report) (sinks.Sink, error) {
	m.mu.Lock()
	if m.Got == nil {
		m.Got = map[string][]*record.Record{}
	}
	m.mu.Unlock()
	return &memorySink{m: m, name: name, report: report}, nil
}

// Records returns what sink name received.
func (m *MemorySinks) Records(name string) []*record.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*record.Record(nil), m.Got[name]...)
}

type memorySink struct {
	m      *MemorySinks
	name   string
	report sinks.Report
}

func (s *memorySink) Write(_ context.Context, recs []*record.Record) error {
	for _, r := range recs {
		if s.m.Fail != nil {
			if err := s.m.Fail(s.name, r); err != nil {
				s.report(r, err)
				continue
			}
		}
		s.m.mu.Lock()
		s.m.Got[s.name] = append(s.m.Got[s.name], r)
		s.m.mu.Unlock()
		s.report(r, nil)
	}
	return nil
}

func (s *memorySink) Close(context.Context) error { return nil }
