// Package txn is the exactly-once path's Kafka transactions: one franz-go client per pipeline
// instance that is both the consumer group member and the transactional producer (KIP-447),
// the transaction open now (a Batch), and the one door through which sinks write into it.
//
// The source (sources/eos.go) polls, begins a Batch, hands its records on, and ends the
// Batch once every record it read is settled: outputs, DLQ records and the source offsets
// commit together. Sinks write through Session.Produce, which refuses a write whose Batch is
// over: a Batch aborted by a revoke, a lost partition, a failed write or its deadline is
// read again from the committed offsets, so what it still carries is dropped, never written
// into the next transaction.
package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/failure"
)

// Session is a pipeline instance's consumer group member and transactional producer.
type Session struct {
	s         *kgo.GroupTransactSession // replaced by Renew (under mu: a write reads it)
	opts      []kgo.Opt                 // what made it, for Renew
	log       *slog.Logger
	onRevoked func(map[string][]int32)

	// mu is held shared by a write while it hands its record to the producer, alone by
	// Begin and by an abort at a revoke: no write is handed over while a transaction starts
	// or ends (franz-go forbids it), and none after its Batch is over.
	mu    sync.RWMutex
	cur   atomic.Pointer[Batch] // the open transaction; nil between transactions
	lanes lanes                 // the output partitions' writes in the producer

	revokes atomic.Int64 // revokes and losses that aborted an open transaction
	commits atomic.Int64
}

// Open makes the session's client from the connection's options plus the group's and the
// producer's; the client connects lazily (the first poll joins the group). onRevoked, when
// not nil, is told of every revoke and loss after the open transaction is aborted.
func Open(opts []kgo.Opt, onRevoked func(map[string][]int32), log *slog.Logger) (*Session, error) {
	t := &Session{log: log, onRevoked: onRevoked}
	t.opts = append(opts, kgo.OnPartitionsRevoked(t.revoked), kgo.OnPartitionsLost(t.revoked))
	s, err := kgo.NewGroupTransactSession(t.opts...)
	if err != nil {
		return nil, err
	}
	t.s = s
	t.fence()
	return t, nil
}

// Renew closes the client and makes a new one with the same options (and transactional id),
// which rejoins the group and reads from the committed offsets; between transactions only.
// It is how a producer whose transaction the broker timed out takes its transactional id
// back: franz-go's client has no way back from the fenced epoch.
func (t *Session) Renew() error {
	t.s.Close() // outside mu: the close revokes, and revoked takes mu when a Batch is open
	s, err := kgo.NewGroupTransactSession(t.opts...)
	if err != nil {
		return fmt.Errorf("exactly-once: a new client after the transaction timed out: %w", err)
	}
	t.mu.Lock()
	t.s = s
	t.mu.Unlock()
	t.fence()
	return nil
}

// fence takes the transactional id over at once (InitProducerID), so that the broker aborts
// what an earlier producer with the same id left open — this process before a reconnection,
// or a predecessor that crashed — rather than letting it hold the group's offsets
// (read with require_stable) until its transaction_timeout. The client's own producer id
// comes after, from a newer epoch. A fence that fails is left to that one.
func (t *Session) fence() {
	cl := t.s.Client()
	id, _ := cl.OptValue(kgo.TransactionalID).(string)
	timeout, _ := cl.OptValue(kgo.TransactionTimeout).(time.Duration)
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), fenceWithin)
	defer cancel()
	for attempt := 1; ; attempt++ {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = &id, int32(timeout.Milliseconds())
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil || !errors.Is(err, kerr.ConcurrentTransactions) && !errors.Is(err, kerr.CoordinatorLoadInProgress) {
			if err != nil {
				t.log.Debug("fencing earlier producers of the transactional id", "err", err)
			}
			return
		}
		select { // the broker aborts what was open, then answers
		case <-time.After(failure.Backoff(attempt, 50*time.Millisecond, time.Second, 2, 0.2)):
		case <-ctx.Done():
			return
		}
	}
}

// fenceWithin bounds the fence: past it the client's own producer id takes over.
const fenceWithin = 10 * time.Second

// Poll returns the records fetched next (at most max), waiting until ctx ends for some.
func (t *Session) Poll(ctx context.Context, max int) kgo.Fetches { return t.s.PollRecords(ctx, max) }

// Close leaves the group and closes the client. The source ends every transaction before;
// one left open (a hard stop) is aborted by the broker at its timeout, or at once by the next
// instance with the same transactional id.
func (t *Session) Close() { t.s.Close() }

// Begin starts a transaction.
func (t *Session) Begin(deadline time.Duration) (*Batch, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.s.Begin(); err != nil {
		return nil, &Error{Op: "begin", Err: err}
	}
	b := newBatch(deadline)
	t.cur.Store(b)
	return b, nil
}

func newBatch(deadline time.Duration) *Batch {
	ctx, cancel := context.WithCancel(context.Background())
	return &Batch{ctx: ctx, cancel: cancel, drained: make(chan struct{}, 1), over: make(chan struct{}), began: time.Now(), deadline: deadline}
}

// Produce hands r to the producer in b's transaction; promise gets its outcome. It returns
// false, and writes nothing, when b is over: the record is read again after the rewind. While
// a write to r's partition goes alone, r is held and handed over after it (promise then
// gets ErrOver if b ended meanwhile).
func (t *Session) Produce(b *Batch, r *kgo.Record, promise func(*kgo.Record, error)) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.cur.Load() != b || b.ended.Load() {
		return false
	}
	l := t.lanes.get(r)
	if t.lanes.enter(l, heldWrite{b: b, r: r, promise: promise}) {
		t.s.Produce(b.ctx, r, t.lanes.answered(l, promise))
	}
	return true
}

// End ends b: a commit of its outputs and the offsets of every record polled since it
// began, when commit is asked and nothing doomed it; an abort otherwise, after which the
// client reads every partition again from its committed offset. committed says which.
// An error is fatal for this producer (fenced by a newer one with the same transactional
// id, or the broker's state lost): the caller stops, uncommitted.
func (t *Session) End(ctx context.Context, b *Batch, commit bool) (committed bool, err error) {
	t.mu.Lock()
	b.closing = true
	commit = commit && !b.ended.Load() && b.failed() == nil
	b.end()
	t.mu.Unlock()
	try := kgo.TryAbort
	if commit {
		try = kgo.TryCommit
	}
	committed, err = t.s.End(ctx, try)
	t.cur.CompareAndSwap(b, nil)
	switch {
	case err != nil:
		return false, &Error{Op: "end", Err: err}
	case committed:
		t.commits.Add(1)
		b.committed()
	}
	return committed, nil
}

// revoked is the group's revoke (and loss) callback: an open transaction is aborted before
// it returns, so that the partitions' next owner starts from offsets no transaction of
// ours can still move. (franz-go's session also marks itself failed, so an End under way
// aborts too.)
func (t *Session) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	if len(parts) == 0 { // a cooperative rebalance that takes nothing from us
		return
	}
	if t.onRevoked != nil {
		defer t.onRevoked(parts)
	}
	b := t.cur.Load()
	if b == nil {
		return
	}
	b.end() // no more writes; one blocked in the producer gives up, so the lock below is free
	t.mu.Lock()
	defer t.mu.Unlock()
	if b.closing {
		return // End has it: it sees the session failed and aborts
	}
	b.closing = true
	t.revokes.Add(1)
	t.log.Info("partitions revoked in a transaction: aborting it; its records will be read again", "partitions", fmt.Sprint(parts))
	if err := cl.AbortBufferedRecords(ctx); err != nil {
		t.log.Warn("aborting the buffered writes at a revoke", "err", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.log.Warn("aborting the transaction at a revoke", "err", err)
	}
}

// Stats are the session's counts: transactions committed, and revokes and losses of
// partitions that aborted an open one.
func (t *Session) Stats() (commits, revokes int64) {
	return t.commits.Load(), t.revokes.Load()
}

// Batch is one transaction: the records read in it, each settled (record.Settler) when it
// and all its copies are done. The source ends the Batch once all are.
type Batch struct {
	ctx      context.Context // ends when the Batch is over: writes still blocked give up
	cancel   context.CancelFunc
	began    time.Time
	deadline time.Duration // how long it may stay open before it is aborted

	pending atomic.Int64
	drained chan struct{} // a token when pending reaches 0
	ended   atomic.Bool
	over    chan struct{} // closed when ended
	endOnce sync.Once
	closing bool // End or a revoke took the transaction over (guarded by Session.mu)

	failMu  sync.Mutex
	failure error    // the first write that failed: the transaction can only abort
	onDone  []func() // run once the transaction commits
}

// AfterCommit runs fn once the transaction commits; never when it aborts.
func (b *Batch) AfterCommit(fn func()) {
	b.failMu.Lock()
	b.onDone = append(b.onDone, fn)
	b.failMu.Unlock()
}

func (b *Batch) committed() {
	b.failMu.Lock()
	fns := b.onDone
	b.onDone = nil
	b.failMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Add counts n records handed on in the transaction.
func (b *Batch) Add(n int) { b.pending.Add(int64(n)) }

// Settle is told that one record of the Batch is done.
func (b *Batch) Settle(uint64) {
	if b.pending.Add(-1) == 0 {
		select {
		case b.drained <- struct{}{}:
		default:
		}
	}
}

// Age is how long the Batch has been open.
func (b *Batch) Age() time.Duration { return time.Since(b.began) }

// Pending is how many records of the Batch are not done.
func (b *Batch) Pending() int64 { return b.pending.Load() }

// Drained gets a token each time the Batch's records are all done.
func (b *Batch) Drained() <-chan struct{} { return b.drained }

// Over closes when the Batch is over (ended, or aborted by a revoke).
func (b *Batch) Over() <-chan struct{} { return b.over }

// Ended reports whether the Batch is over: writes of its records are dropped.
func (b *Batch) Ended() bool { return b.ended.Load() }

// Expires is when the Batch must be over: past it, it is aborted.
func (b *Batch) Expires() time.Time { return b.began.Add(b.deadline) }

// Fail records that a write of the Batch failed: it cannot commit.
func (b *Batch) Fail(err error) {
	b.failMu.Lock()
	if b.failure == nil {
		b.failure = err
	}
	b.failMu.Unlock()
	b.cancel()
}

func (b *Batch) failed() error {
	b.failMu.Lock()
	defer b.failMu.Unlock()
	return b.failure
}

// Failure is the first failed write of the Batch, nil when none failed.
func (b *Batch) Failure() error { return b.failed() }

func (b *Batch) end() {
	b.endOnce.Do(func() {
		b.ended.Store(true)
		b.cancel()
		close(b.over)
	})
}

// Error is a transaction that could not begin or end: fatal for this producer.
type Error struct {
	Op  string // begin, end
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("exactly-once: the transaction could not %s: %v", e.Op, e.Err)
	if h := failure.Hint(e.Err); h != "" {
		msg += " (" + h + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }
