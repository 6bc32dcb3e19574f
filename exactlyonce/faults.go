package exactlyonce

import (
	"sync"
	"sync/atomic"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// source is where a record was read: the key of what an exactly-once sink learnt of its
// writes across the transactions that read it again.
type source struct {
	topic     string
	partition int32
	offset    int64
}

func sourceOf(rec *record.Record) source { return source{rec.Topic, rec.Partition, rec.Offset} }

// faults are the records whose writes the broker refused for a record's own reason, until
// a transaction that settles them commits: a suspect (its batch was refused; written alone
// next time), or convicted (refused alone: dead-lettered without being written again).
type faults struct {
	n  atomic.Int32 // records known: Write looks no further while there are none
	mu sync.Mutex
	by map[source]*failure.Error // nil: a suspect
}

// of says whether the record read at at was convicted (its failure) or is a suspect.
func (f *faults) of(at source) (convicted *failure.Error, suspect bool) {
	if f.n.Load() == 0 {
		return nil, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, known := f.by[at]
	return e, known && e == nil
}

func (f *faults) suspect(at source) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, known := f.by[at]; !known {
		f.set(at, nil)
	}
}

func (f *faults) convict(at source, why *failure.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set(at, why)
}

func (f *faults) set(at source, why *failure.Error) {
	if f.by == nil {
		f.by = map[source]*failure.Error{}
	}
	if _, known := f.by[at]; !known {
		f.n.Add(1)
	}
	f.by[at] = why
}

func (f *faults) forget(at source) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, known := f.by[at]; known {
		delete(f.by, at)
		f.n.Add(-1)
	}
}
