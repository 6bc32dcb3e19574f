package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/failure"
)

// TxnSession is a pipeline instance's consumer group member and transactional producer in
// one franz-go client (KIP-447): what it polls and what it writes commit together, or not at
// all. One transaction is open at a time (Begin … End); writes go into it through Produce,
// which refuses a write once its transaction is over: a transaction aborted by a revoke, a
// lost partition, a failed write or its deadline is read again from the committed offsets,
// so what it still carries is dropped, never written into the next one.
type TxnSession struct {
	s         *kgo.GroupTransactSession // replaced by Renew (under mu: a write reads it)
	opts      []kgo.Opt                 // what made it, for Renew
	log       *slog.Logger
	onRevoked func(map[string][]int32)

	// mu is held shared by a write while it hands its record to the producer, alone by
	// Begin and by an abort at a revoke: no write is handed over while a transaction starts
	// or ends (franz-go forbids it), and none after its transaction is over.
	mu    sync.RWMutex
	cur   atomic.Pointer[Transaction] // the open transaction; nil between transactions
	lanes lanes                       // the output partitions' writes in the producer

	revokes atomic.Int64 // revokes and losses that aborted an open transaction
	commits atomic.Int64

	marksMu sync.Mutex
	marks   map[Partition]int64 // each partition's high watermark, as last fetched
}

// Partition names a topic's partition.
type Partition struct {
	Topic     string
	Partition int32
}

// Position is where a partition of the session stands: the group's committed offset (-1
// before any) and the partition's high watermark as last fetched (-1 before a fetch).
type Position struct {
	Committed, HighWater int64
}

// TxnConfig is what a transactional session is made of besides its connection.
type TxnConfig struct {
	Group              GroupConfig
	Producer           ProducerConfig
	TransactionalID    string
	TransactionTimeout time.Duration
	OnAssigned         func(map[string][]int32)
	OnRevoked          func(map[string][]int32) // told of every revoke and loss, after the open transaction is aborted
}

// NewTxnSession makes the session's client; it connects lazily (the first poll joins the
// group), after it fenced earlier producers of its transactional id.
func NewTxnSession(conn []kgo.Opt, cfg TxnConfig, log *slog.Logger) (*TxnSession, error) {
	t := &TxnSession{log: log, onRevoked: cfg.OnRevoked}
	opts := append(slices.Clone(conn), GroupOpts(cfg.Group)...)
	opts = append(opts, ProducerOpts(cfg.Producer)...)
	opts = append(opts, kgo.RequireStableFetchOffsets(), kgo.TransactionalID(cfg.TransactionalID), kgo.TransactionTimeout(cfg.TransactionTimeout),
		kgo.MetadataMinAge(txnRetryAge),
		kgo.OnPartitionsRevoked(t.revoked), kgo.OnPartitionsLost(t.revoked))
	if cfg.OnAssigned != nil {
		opts = append(opts, kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) { cfg.OnAssigned(parts) }))
	}
	t.opts = opts
	s, err := kgo.NewGroupTransactSession(t.opts...)
	if err != nil {
		return nil, err
	}
	t.s = s
	t.fence()
	return t, nil
}

// txnRetryAge bounds how long a write the broker answered CONCURRENT_TRANSACTIONS waits:
// Kafka answers so while it still writes the previous transaction's markers, as it often
// does to the first writes of the next one; franz-go retries such a write after a metadata
// refresh, at most one every MetadataMinAge, 5s by default: a 5s stall of every write.
const txnRetryAge = 250 * time.Millisecond

// Renew closes the client and makes a new one with the same options (and transactional id),
// which fences the old one's, rejoins the group and reads from the committed offsets;
// between transactions only. It is how a producer whose transaction the broker timed out, or
// whose end was not confirmed, takes its transactional id back: franz-go's client has no
// way back from a fenced epoch, and the committed offsets are then the broker's to say.
func (t *TxnSession) Renew() error {
	t.s.Close() // outside mu: the close revokes, and revoked takes mu when a transaction is open
	s, err := kgo.NewGroupTransactSession(t.opts...)
	if err != nil {
		return fmt.Errorf("exactly-once: a new client: %w", err)
	}
	t.mu.Lock()
	t.s = s
	t.mu.Unlock()
	t.fence()
	return nil
}

// fence takes the transactional id over at once (InitProducerID), so that the broker aborts
// what an earlier producer with the same id left open — this process before a reconnection,
// or a predecessor that crashed — rather than letting it hold the group's offsets (read with
// require_stable) until its transaction_timeout. The client's own producer id comes after,
// from a newer epoch. A fence that fails is left to that one.
func (t *TxnSession) fence() {
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

// Poll returns the records fetched next (at most max), waiting until ctx ends for some;
// closed reports a client that is closed.
func (t *TxnSession) Poll(ctx context.Context, max int) (msgs []Message, errs []error, closed bool) {
	fs := t.s.PollRecords(ctx, max)
	if fs.IsClientClosed() {
		return nil, nil, true
	}
	fs.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, fmt.Errorf("%s/%d: %w", topic, p, err))
		}
	})
	t.marksMu.Lock()
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err == nil && p.HighWatermark >= 0 {
			if t.marks == nil {
				t.marks = map[Partition]int64{}
			}
			t.marks[Partition{p.Topic, p.Partition}] = p.HighWatermark
		}
	})
	t.marksMu.Unlock()
	if n := fs.NumRecords(); n > 0 {
		msgs = make([]Message, 0, n)
		fs.EachRecord(func(r *kgo.Record) { msgs = append(msgs, fromFranz(r)) })
	}
	return msgs, errs, false
}

// Close leaves the group and closes the client. The source ends every transaction before;
// one left open (a hard stop) is aborted by the broker at its timeout, or at once by the next
// instance with the same transactional id.
func (t *TxnSession) Close() { t.s.Close() }

// Begin starts a transaction that may stay open for deadline.
func (t *TxnSession) Begin(deadline time.Duration) (*Transaction, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.s.Begin(); err != nil {
		return nil, &TxnError{Op: "begin", Err: err}
	}
	x := newTransaction(deadline)
	t.cur.Store(x)
	return x, nil
}

// Current is the transaction open now, or nil. Every record in flight belongs to it: a
// transaction ends only once its records are done, or aborts and is waited for before the
// next begins.
func (t *TxnSession) Current() *Transaction { return t.cur.Load() }

// Produce hands m to the producer in transaction x; done gets its outcome. It returns
// false, and writes nothing, when x is over: the record is read again after the rewind.
// While a write to m's partition goes alone, m is held and handed over after it (done then
// gets ErrOver if x ended meanwhile).
func (t *TxnSession) Produce(x *Transaction, m *Message, done func(*Message, error)) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.cur.Load() != x || x.ended.Load() {
		return false
	}
	w := heldWrite{x: x, m: m, done: done}
	l := t.lanes.get(m)
	if t.lanes.enter(l, w) {
		t.s.Produce(x.ctx, toFranz(m), t.lanes.answered(l, w))
	}
	return true
}

// End ends x: a commit of its outputs and the offsets of every record polled since it
// began, when commit is asked and nothing doomed it; an abort otherwise, after which the
// client reads every partition again from its committed offset. committed says which.
// An error says the end could not be told (a *TxnError): the caller judges it.
func (t *TxnSession) End(ctx context.Context, x *Transaction, commit bool) (committed bool, err error) {
	t.mu.Lock()
	x.closing = true
	commit = commit && !x.ended.Load() && x.Failure() == nil
	x.end()
	t.mu.Unlock()
	try := kgo.TryAbort
	if commit {
		try = kgo.TryCommit
	}
	committed, err = t.s.End(ctx, try)
	t.cur.CompareAndSwap(x, nil)
	switch {
	case err != nil:
		return false, &TxnError{Op: "end", Err: err}
	case committed:
		t.commits.Add(1)
		x.committed()
	}
	return committed, nil
}

// revoked is the group's revoke (and loss) callback: an open transaction is aborted before
// it returns, so that the partitions' next owner starts from offsets no transaction of
// ours can still move. (franz-go's session also marks itself failed, so an End under way
// aborts too.)
func (t *TxnSession) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	if len(parts) == 0 { // a cooperative rebalance that takes nothing from us
		return
	}
	if t.onRevoked != nil {
		defer t.onRevoked(parts)
	}
	x := t.cur.Load()
	if x == nil {
		return
	}
	x.end() // no more writes; one blocked in the producer gives up, so the lock below is free
	t.mu.Lock()
	defer t.mu.Unlock()
	if x.closing {
		return // End has it: it sees the session failed and aborts
	}
	x.closing = true
	t.revokes.Add(1)
	t.log.Info("partitions revoked in a transaction: aborting it; its records will be read again", "partitions", fmt.Sprint(parts))
	if err := cl.AbortBufferedRecords(ctx); err != nil {
		t.log.Warn("aborting the buffered writes at a revoke", "err", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.log.Warn("aborting the transaction at a revoke", "err", err)
	}
}

// Positions are the committed offset and last fetched high watermark of each partition in
// parts (the assigned ones): what the lag of exactly-once is.
func (t *TxnSession) Positions(parts []Partition) map[Partition]Position {
	t.mu.RLock()
	committed := t.s.Client().CommittedOffsets()
	t.mu.RUnlock()
	t.marksMu.Lock()
	defer t.marksMu.Unlock()
	out := make(map[Partition]Position, len(parts))
	for _, p := range parts {
		pos := Position{Committed: -1, HighWater: -1}
		if o, ok := committed[p.Topic][p.Partition]; ok {
			pos.Committed = o.Offset
		}
		if hw, ok := t.marks[p]; ok {
			pos.HighWater = hw
		}
		out[p] = pos
	}
	return out
}

// Stats are the session's counts: transactions committed, and revokes and losses of
// partitions that aborted an open one.
func (t *TxnSession) Stats() (commits, revokes int64) {
	return t.commits.Load(), t.revokes.Load()
}

// Transaction is the transaction open now: the writes it carries and its fate.
type Transaction struct {
	ctx      context.Context // ends when the transaction is over: writes still blocked give up
	cancel   context.CancelFunc
	began    time.Time
	deadline time.Duration // how long it may stay open before it is aborted

	ended   atomic.Bool
	over    chan struct{} // closed when ended
	endOnce sync.Once
	closing bool // End or a revoke took the transaction over (guarded by TxnSession.mu)

	mu      sync.Mutex
	failure error    // the first write that failed: the transaction can only abort
	onDone  []func() // run once the transaction commits
}

func newTransaction(deadline time.Duration) *Transaction {
	ctx, cancel := context.WithCancel(context.Background())
	return &Transaction{ctx: ctx, cancel: cancel, over: make(chan struct{}), began: time.Now(), deadline: deadline}
}

// Age is how long the transaction has been open.
func (x *Transaction) Age() time.Duration { return time.Since(x.began) }

// Over closes when the transaction is over (ended, or aborted by a revoke).
func (x *Transaction) Over() <-chan struct{} { return x.over }

// Ended reports whether the transaction is over: writes in it are dropped.
func (x *Transaction) Ended() bool { return x.ended.Load() }

// Expires is when the transaction must be over: past it, it is aborted.
func (x *Transaction) Expires() time.Time { return x.began.Add(x.deadline) }

// Fail records that a write of the transaction failed: it cannot commit, and writes still
// waiting give up.
func (x *Transaction) Fail(err error) {
	x.mu.Lock()
	if x.failure == nil {
		x.failure = err
	}
	x.mu.Unlock()
	x.cancel()
}

// Failure is the first failed write of the transaction, nil when none failed.
func (x *Transaction) Failure() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.failure
}

// AfterCommit runs fn once the transaction commits; never when it aborts.
func (x *Transaction) AfterCommit(fn func()) {
	x.mu.Lock()
	x.onDone = append(x.onDone, fn)
	x.mu.Unlock()
}

func (x *Transaction) committed() {
	x.mu.Lock()
	fns := x.onDone
	x.onDone = nil
	x.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func (x *Transaction) end() {
	x.endOnce.Do(func() {
		x.ended.Store(true)
		x.cancel()
		close(x.over)
	})
}

// TxnError is a transaction that could not begin or end.
type TxnError struct {
	Op  string // begin, end
	Err error
}

func (e *TxnError) Error() string {
	msg := fmt.Sprintf("exactly-once: the transaction could not %s: %v", e.Op, e.Err)
	if h := failure.Hint(e.Err); h != "" {
		msg += " (" + h + ")"
	}
	return msg
}

func (e *TxnError) Unwrap() error { return e.Err }
