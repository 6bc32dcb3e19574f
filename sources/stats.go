package sources

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Stats are a source's counters, for tests and metrics.
type Stats struct {
	MostPending int64 // the most records one partition's ledger held at once
	// PendingBytes and PeakPendingBytes are the bytes of the records read and not yet done,
	// now and at most so far (max_pending_bytes bounds them).
	PendingBytes, PeakPendingBytes int64
	Commits                        int64
	Aborts                         int64            // exactly_once: transactions aborted
	AbortsBy                       map[string]int64 // exactly_once: of them, by reason (AbortReasons)
	Revokes                        int64            // exactly_once: revokes and losses that aborted a transaction
	Rebalances                     int64
	Assigned                       int64
	Joined                         bool
	Pending                        int64 // records read and not committed, over the assigned partitions
	// WaitingFor is how long the source has waited on Kafka: at_least_once, for offset
	// commits failing in a row; exactly_once, for the open transaction's end (its records'
	// writes, or the brokers' confirmation); in either, before it joined, for its group
	// (JoinWait). 0: not waiting. Waiting says what it waits for, once that is WaitSaid or
	// more ("" before).
	WaitingFor time.Duration
	Waiting    string
	// Partitions holds, per assigned "topic/partition", the records pending and the commit point.
	Partitions map[string]PartitionStats
}

// PartitionStats describe one assigned partition.
type PartitionStats struct {
	Topic       string
	Partition   int32
	Pending     int
	CommitPoint int64 // -1 before a record is done
	Position    int64 // the commit point, or where the claim started
	HighWater   int64 // the partition's high-water mark, as last fetched
	Lag         int64 // records past the position
	// OldestPending is how long ago the oldest record not yet committed was read.
	OldestPending time.Duration
	// Stalled: the commit point has not moved for stall_timeout while records are pending.
	Stalled bool
}

// Why a transaction aborted: the reason label of the aborts counted (Stats.AbortsBy).
const (
	AbortDeadline = "deadline" // its records were not done within 80% of transaction_timeout
	AbortWrite    = "write"    // a write failed (a record's fault is then written alone)
	AbortRevoke   = "revoke"   // partitions were revoked or lost
	AbortCommit   = "commit"   // its end could not be confirmed, or the group moved on meanwhile
	AbortStop     = "stop"     // the pipeline stopped: on an error, or past drain_timeout
)

// AbortReasons lists the reasons, for the metrics.
var AbortReasons = []string{AbortDeadline, AbortWrite, AbortRevoke, AbortCommit, AbortStop}

// WaitSaid is how long a source's wait lasts before its stats name it (Stats.Waiting): a
// leader's failover or a short rebalance takes a few seconds.
const WaitSaid = 5 * time.Second

// JoinClock is when a source's Run began (Start), for JoinWait: a source's Stats may be read
// from another goroutine, before Run or while it runs.
type JoinClock struct{ began atomic.Int64 } // Unix nanoseconds; 0: not begun

// Start marks the run's beginning, now.
func (j *JoinClock) Start() { j.began.Store(time.Now().UnixNano()) }

// JoinWait puts in s how long a source whose run began by j and has not yet joined its group
// has waited for it, naming the wait from WaitSaid on unless s names another. A restarted
// member usually waits here for the one it replaces: a member that stopped without leaving
// (killed, or cut off) keeps its partitions until its session_timeout runs out.
func (c *Config) JoinWait(s *Stats, j *JoinClock, now time.Time) {
	began := j.began.Load()
	if s.Joined || began == 0 {
		return
	}
	d := now.Sub(time.Unix(0, began))
	s.WaitingFor = max(s.WaitingFor, d)
	if s.Waiting != "" || d < WaitSaid {
		return
	}
	s.Waiting = fmt.Sprintf("the consumer group %s to take this member in, for %v: a member that stopped without leaving (killed?) keeps its partitions until its session_timeout (%v) runs out", c.Group, d.Round(time.Second), c.SessionTimeout)
	if c.InstanceID == "" {
		s.Waiting += "; with instance_id a restarted member takes its own back at once"
	} else {
		s.Waiting += "; is the group coordinator up?"
	}
}
