package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
)

// WriteError is a replayed record Kafka did not take: the replay stops there, and the group
// keeps what was written before it.
type WriteError struct {
	From string // the DLQ record: topic/partition@offset
	To   string // where it was going: topic/partition
	Err  error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("writing %s back to %s: %v", e.From, e.To, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// BusyGroupError is a replay refused because its group has members: another replay is
// running. Two members would each wait for the partitions the other holds, and never end.
type BusyGroupError struct {
	Group   string
	Members int
}

func (e *BusyGroupError) Error() string {
	return fmt.Sprintf("group %s has %d member(s): is another dlq replay running? Wait for it to end, or give this one another --group", e.Group, e.Members)
}

// commitWait bounds the last commit of an interrupted replay: what was written is worth
// committing, but not worth hanging on a broker that does not answer.
const commitWait = 10 * time.Second

// Replayer replays one DLQ topic. Its progress is the committed offsets of a consumer group,
// so that an interrupted replay goes on from where it stopped: a kafkaio.Reader is the group
// member, a kafkaio.Writer (idempotent, acks=all) writes, and each write is acknowledged
// before the offset of its DLQ record is marked for commit. A dry run reads from the group's
// offsets without joining it, so that it disturbs no replay that runs.
type Replayer struct {
	admin   *kafkaio.Admin
	topic   string
	sources []string
	decider

	mu    sync.Mutex
	stats Stats
}

// New prepares a replay of the DLQ topic on the connection of admin (which the caller
// closes after Run); sources are the topics the pipeline reads, where records may go back.
func New(admin *kafkaio.Admin, topic string, sources []string, opts Options) *Replayer {
	return &Replayer{admin: admin, topic: topic, sources: sources, decider: decider{opts: opts}}
}

// Stats is what the replay has done so far.
func (r *Replayer) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Run replays the DLQ up to its end as it is when Run starts (for its isolation level), from
// where the group left off; it returns then, or when ctx ends (a later Run goes on from
// there).
func (r *Replayer) Run(ctx context.Context) error {
	backlog, from, err := r.prepare(ctx)
	if err != nil || len(from) == 0 {
		return err
	}
	how := kafkaio.Reading{From: map[string]map[int32]int64{r.topic: from}, PollMax: r.pollSize()}
	if !r.opts.DryRun {
		how.Group = r.opts.Group
	}
	rd, err := r.admin.Reader(backlog, how)
	if err != nil {
		return err
	}
	defer rd.Close()
	var w *kafkaio.Writer
	if !r.opts.DryRun {
		if w, err = r.admin.Writer(); err != nil {
			return err
		}
		defer w.Close()
	}
	err = r.consume(ctx, rd, w)
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitWait)
	defer cancel()
	if cerr := rd.Commit(commitCtx); cerr != nil && err == nil {
		err = fmt.Errorf("committing the replay's progress (group %s): %w", r.opts.Group, cerr)
	}
	return err
}

// consume replays what the reader brings until each partition is read to its end, or ctx
// ends (its error then: the group keeps what was done). A dry run has no writer.
func (r *Replayer) consume(ctx context.Context, rd *kafkaio.Reader, w *kafkaio.Writer) error {
	var pace <-chan time.Time
	if r.opts.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / r.opts.Rate))
		defer t.Stop()
		pace = t.C
	}
	for {
		m, err := rd.Next(ctx)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return fmt.Errorf("reading %s: %w", r.topic, err)
		}
		done, err := r.replay(ctx, w, m, pace)
		if err != nil {
			return err
		}
		if !done {
			return ctx.Err()
		}
		rd.Mark(m)
	}
}

// prepare reads what Run needs before it joins the group: the DLQ's backlog, the partitions
// with something left to replay with where the group stands in them, and the partitions of
// the topics records may go back to.
func (r *Replayer) prepare(ctx context.Context) (*kafkaio.Backlog, map[int32]int64, error) {
	backlog, err := r.admin.Backlog(ctx, !r.opts.ReadUncommitted, r.topic)
	if err != nil {
		return nil, nil, err
	}
	if !r.opts.DryRun {
		n, err := r.admin.GroupMembers(ctx, r.opts.Group)
		if err != nil {
			return nil, nil, err
		}
		if n > 0 {
			return nil, nil, &BusyGroupError{Group: r.opts.Group, Members: n}
		}
	}
	committed, err := r.admin.GroupOffsets(ctx, r.opts.Group)
	if err != nil {
		return nil, nil, err
	}
	from := map[int32]int64{}
	for p, end := range backlog.End[r.topic] {
		at := backlog.Start[r.topic][p]
		if o, ok := committed[r.topic][p]; ok {
			at = max(at, o)
		}
		if at < end {
			from[p] = at
		}
	}
	targets := r.sources
	if r.opts.To != "" {
		targets = []string{r.opts.To}
	}
	r.targets = map[string]int32{}
	for _, t := range targets {
		if r.targets[t], err = r.admin.Partitions(ctx, t); err != nil {
			return nil, nil, fmt.Errorf("reading the partitions of %v: %w", targets, err)
		}
	}
	return backlog, from, nil
}

// pollSize bounds the records of a poll, which hold rebalances until they are written: about
// a second's worth at --rate.
func (r *Replayer) pollSize() int {
	if r.opts.Rate > 0 {
		return max(1, int(r.opts.Rate))
	}
	return 500
}

// replay writes m back to its topic when it passes the filters (w nil, a dry run: it only
// counts and shows it); done is false when ctx ended first (it was not written, or not acknowledged: its offset must not be committed).
func (r *Replayer) replay(ctx context.Context, w *kafkaio.Writer, m *kafkaio.Message, pace <-chan time.Time) (done bool, err error) {
	if m.Control {
		return true, nil // a transaction marker: the end of a partition, never a record to replay
	}
	out, why := r.message(m)
	if why == write {
		if pace != nil {
			select {
			case <-pace:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return false, nil
		}
		if w != nil {
			if err := w.Write(ctx, out); err != nil {
				if ctx.Err() != nil {
					return false, nil
				}
				return false, &WriteError{From: fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset), To: fmt.Sprintf("%s/%d", out.Topic, out.Partition), Err: err}
			}
		}
	}
	r.mu.Lock() // Stats reads them from another goroutine
	r.stats.add(why)
	r.mu.Unlock()
	switch {
	case why == write && r.opts.Show != nil:
		r.opts.Show(out)
	case why == refused && r.opts.Refuse != nil:
		r.opts.Refuse(m, sourceTopic(m))
	}
	return true, nil
}
