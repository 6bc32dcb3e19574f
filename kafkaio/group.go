package kafkaio

import (
	"context"
	"fmt"
	"time"
)

// GroupConfig is what a consumer group member is made of.
type GroupConfig struct {
	Group      string
	InstanceID string // static membership; "" for none
	Topics     []string
	Balancer   string // cooperative-sticky, sticky, range or round-robin
	// SessionTimeout, HeartbeatInterval and RebalanceTimeout are the group's timeouts.
	SessionTimeout, HeartbeatInterval, RebalanceTimeout time.Duration
	StartAtEnd                                          bool // a partition nothing was committed for starts at its end
	ReadCommitted                                       bool // records of aborted and open transactions are never read
	FetchMinBytes, FetchMaxBytes, FetchPartitionBytes   int32
	FetchMaxWait                                        time.Duration
	// Buffer is how many records a partition may have fetched and not yet given to its claim
	// (sarama's channel_buffer_size; franz-go hands over what it fetched).
	Buffer int
}

// Group is a consumer group member. It joins the group and gives every partition assigned to
// it to the Handler as a Claim, each in a goroutine of its own; a partition revoked or lost
// closes its claim's channel, and the group waits for the handler to return before it lets
// the partition go, so that what was read of it can finish and be committed first.
type Group interface {
	// Run joins the group and serves claims until ctx ends (every claim is then closed and
	// waited for) or an error that waiting will not cure (the failure table's stop).
	Run(ctx context.Context, h Handler) error
	// Pause stops fetching a partition (what was fetched still comes); Resume undoes it.
	Pause(topic string, partition int32)
	Resume(topic string, partition int32)
	// Commit commits offsets (the next offset to read of each partition) in the member's
	// current generation.
	Commit(ctx context.Context, offsets []Offset) error
}

// Offset is a partition's position: the next offset to read.
type Offset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Handler is told what the group does.
type Handler interface {
	// Joined is told each time the member joins a generation, with the partitions it holds;
	// fresh when it joins anew (at start, or after its session ended), not in a cooperative
	// rebalance that keeps its session.
	Joined(generation int32, member string, partitions map[string][]int32, fresh bool)
	// Claim serves one assigned partition: it reads Messages until the channel closes, then
	// finishes what it read (committing it, unless the claim was lost) and returns.
	Claim(c Claim)
	// Trouble is told of what goes wrong and is waited out: a session that failed and joins
	// again, fetch errors, records deleted before they were read (*ResetError).
	Trouble(err error)
	// Room returns once the member may take in more records, or ctx ends: a member that
	// polls its client (franz-go) polls no more while the records read and not yet done are
	// over their bound, so that the client buffers one fetch beyond it rather than a fetch for
	// every partition not yet paused.
	Room(ctx context.Context)
}

// Claim is one partition assigned to the member.
type Claim interface {
	Topic() string
	Partition() int32
	// Messages are the partition's records in offset order, in batches; the channel closes
	// when the partition is revoked or lost, or the group stops.
	Messages() <-chan []Message
	// HighWaterMark is the partition's end as last fetched.
	HighWaterMark() int64
	// Lost reports, once Messages closed, whether the partition was lost (its session ended
	// unannounced: another member may hold it already, so nothing is committed) rather than
	// revoked.
	Lost() bool
	// Context ends when the claim's session does (the group stops or rejoins); its cause is
	// the cause of the Run context's end.
	Context() context.Context
}

// ResetError says that records of a partition were deleted (by retention, or the topic
// recreated) before the group read them: its committed offset is no longer in the log (At is
// the committed offset; Running false), or the records after the last one read went while it
// ran (At is that position; Running true). They are lost to the group, and reading goes on
// from the log's start.
type ResetError struct {
	Topic     string
	Partition int32
	At        int64 // the committed offset, or the position the reading had reached
	LogStart  int64 // where the log begins now
	LogEnd    int64
	Running   bool
}

func (e *ResetError) Error() string {
	return fmt.Sprintf("%s/%d: offset %d is no longer in the log, which starts at %d", e.Topic, e.Partition, e.At, e.LogStart)
}
