// Package failure decides what every failure means for a pipeline, from one table: wait
// (the world's fault), dead-letter (the record's own) or stop (the pipeline's). Whoever meets
// a failure asks Judge and acts on its answer; no other code sorts errors.
package failure

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Outcome is what a failure means.
type Outcome uint8

const (
	// Wait is the world's fault: a broker refusing writes for a while, a leader election, a
	// lost connection. Nothing is dead-lettered and no attempt is used up: the write waits
	// and is retried, in order, until it passes; its partitions pause meanwhile.
	Wait Outcome = iota
	// DeadLetter is the record's own fault: it goes to the DLQ with the reason, and the
	// pipeline goes on.
	DeadLetter
	// Stop is the pipeline's fault: its settings or rights are wrong. It stops without
	// committing the record, so that nothing is lost, and says why in one line.
	Stop
)

func (o Outcome) String() string {
	return [...]string{"wait", "dead-letter", "stop"}[o]
}

// Op is what was being done when a failure happened: one Kafka error can mean different
// things (no right to a topic stops the pipeline when the file names it, and dead-letters the
// record when the record computed it).
type Op uint8

const (
	// Produce writes to a topic the pipeline file names.
	Produce Op = iota
	// ProduceComputed writes to a topic a record computed (a sink's topic_expr).
	ProduceComputed
	// Consume reads as a member of the consumer group.
	Consume
	// Process is a stage working on a record.
	Process
	// EndTxn ends a transaction (delivery: exactly_once): its offsets committed in it
	// (TxnOffsetCommit) and its commit or abort (EndTxn). Wait there means the transaction
	// counts as aborted: a new client reads again from the offsets the broker holds.
	EndTxn
)

// RecordFault is implemented by errors that are their record's fault whatever was being
// done: too large to write, a computed topic that is invalid or not allowed, a body that
// cannot be encoded.
type RecordFault interface {
	error
	RecordFault()
}

// Stopper is implemented by errors that stop the pipeline whatever was being done: a
// stage's dependency down for longer than it may wait.
type Stopper interface {
	error
	Stop()
}

// Error is a failure with its judgement: what it means, who met it, doing what, on which
// topic.
type Error struct {
	Outcome Outcome
	Op      Op
	At      string // who met it: "sink out", "dlq", "stage parse", "source"
	Topic   string // the topic written or read, when there is one
	Err     error
}

// Judge decides what err means, met by at while doing op on topic.
func Judge(op Op, at, topic string, err error) *Error {
	return &Error{Outcome: outcome(op, err), Op: op, At: at, Topic: topic, Err: err}
}

// Reason is the failure without who met it: the cause and its likely explanation, for the
// DLQ's pythia.error header.
func (e *Error) Reason() string {
	if h := e.hint(); h != "" {
		return e.Err.Error() + " (" + h + ")"
	}
	return e.Err.Error()
}

func (e *Error) Error() string {
	switch e.Op {
	case Produce, ProduceComputed:
		return fmt.Sprintf("%s cannot write to topic %s: %s", e.At, e.Topic, e.Reason())
	case Consume:
		return fmt.Sprintf("%s cannot read: %s", e.At, e.Reason())
	case EndTxn:
		return fmt.Sprintf("%s cannot end its transaction: %s", e.At, e.Reason())
	}
	return e.At + ": " + e.Reason()
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) hint() string {
	var ra RegistryAnswer
	if errors.As(e.Err, &ra) {
		return RegistryHint(ra)
	}
	r := ruleOf(e.Err)
	if e.Op == ProduceComputed && r.computedHint != "" {
		return r.computedHint
	}
	return r.hint
}

// Hint is the likely cause of a Kafka error, or "" when the table has none.
func Hint(err error) string { return ruleOf(err).hint }

// ruleOf is the table's rule for a Kafka error (the zero rule for other errors).
func ruleOf(err error) rule {
	code, ok := kafkaCode(err)
	if !ok {
		return rule{}
	}
	return byCode[code]
}

// kafkaCode is the Kafka error code in err: kafkaio hands every client's errors on as
// franz-go's kerr carries them.
func kafkaCode(err error) (int16, bool) {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code, true
	}
	return 0, false
}

func outcome(op Op, err error) Outcome {
	var rf RecordFault
	var st Stopper
	var ra RegistryAnswer
	switch {
	case errors.Is(err, context.Canceled):
		return Wait // the pipeline stops at once: not a judgement on the record
	case errors.As(err, &st):
		return Stop
	case errors.As(err, &rf):
		return DeadLetter
	case errors.As(err, &ra):
		return registryOutcome(op, ra)
	case op == Process:
		return DeadLetter // a stage failed on this record: its data, not the world
	}
	if code, ok := kafkaCode(err); ok {
		r, ok := byCode[code]
		if !ok {
			return Wait // a code this table does not know: a newer retriable one, most likely
		}
		return r.outcome(op)
	}
	var setting SettingError
	if errors.As(err, &setting) {
		return Stop // a setting the client refuses: waiting will not change it
	}
	return Wait // connections, timeouts, brokers away
}

// Row is one line of the table: a Kafka error and what it means for each operation.
type Row struct {
	Code                               *kerr.Error
	Produce, Computed, Consume, EndTxn Outcome
	Hint                               string
}

// Name is the error's name in the Kafka protocol (NOT_ENOUGH_REPLICAS).
func (r Row) Name() string { return r.Code.Message }

// Rows is the table, for the reference documentation.
func Rows() []Row {
	out := make([]Row, len(table))
	for i, r := range table {
		out[i] = Row{Code: r.code, Produce: r.produce, Computed: r.computed, Consume: r.consume, EndTxn: r.endTxn, Hint: r.hint}
	}
	return out
}

type rule struct {
	code                               *kerr.Error
	produce, computed, consume, endTxn Outcome
	hint                               string
	computedHint                       string // for topics a record computed, when it differs
}

func (r rule) outcome(op Op) Outcome {
	switch op {
	case ProduceComputed:
		return r.computed
	case Consume:
		return r.consume
	case EndTxn:
		return r.endTxn
	}
	return r.produce
}

// row builders: the same outcome everywhere, or one per operation. Ending a transaction
// cannot blame a record: what a write would dead-letter waits there.
func all(code *kerr.Error, o Outcome, hint string) rule {
	return rule{code: code, produce: o, computed: o, consume: o, endTxn: o, hint: hint}
}

func written(code *kerr.Error, o Outcome, hint string) rule {
	return rule{code: code, produce: o, computed: o, consume: Wait, endTxn: Wait, hint: hint}
}

func topicRule(code *kerr.Error, static, consume Outcome, hint, computedHint string) rule {
	return rule{code: code, produce: static, computed: DeadLetter, consume: consume, endTxn: static, hint: hint, computedHint: computedHint}
}

const (
	leaderMoving = "a leader election or a broker restart under way"
	noACL        = "may this user use it? check its ACLs"
)

// table is every Kafka error the pipeline can meet and what it means.
var table = []rule{
	// The world's fault: brokers and leaders come and go, replicas catch up.
	all(kerr.UnknownServerError, Wait, "the broker failed on its side"),
	all(kerr.LeaderNotAvailable, Wait, leaderMoving),
	all(kerr.NotLeaderForPartition, Wait, leaderMoving),
	all(kerr.FencedLeaderEpoch, Wait, leaderMoving),
	all(kerr.UnknownLeaderEpoch, Wait, leaderMoving),
	all(kerr.PreferredLeaderNotAvailable, Wait, leaderMoving),
	all(kerr.EligibleLeadersNotAvailable, Wait, leaderMoving),
	all(kerr.NotController, Wait, leaderMoving),
	all(kerr.BrokerNotAvailable, Wait, "a broker is down"),
	all(kerr.ReplicaNotAvailable, Wait, "a replica is down"),
	all(kerr.RequestTimedOut, Wait, "the broker did not answer in time: overloaded, or its replicas slow?"),
	all(kerr.NetworkException, Wait, "the connection to the broker broke"),
	all(kerr.NotEnoughReplicas, Wait, "fewer in-sync replicas than the topic's min.insync.replicas: a broker down or catching up?"),
	all(kerr.NotEnoughReplicasAfterAppend, Wait, "the write reached the leader but too few replicas: it is sent again, and may be written twice"),
	all(kerr.KafkaStorageError, Wait, "a broker's disk failed"),
	all(kerr.ThrottlingQuotaExceeded, Wait, "a quota throttles this client"),
	all(kerr.OutOfOrderSequenceNumber, Wait, "the broker lost track of this producer's sequence: the write is sent again"),
	all(kerr.UnknownProducerID, Wait, "the broker forgot this producer: the write is sent again"),
	all(kerr.InvalidProducerEpoch, Wait, "this producer's epoch moved on: the write is sent again"),
	all(kerr.ConcurrentTransactions, Wait, ""),
	all(kerr.CoordinatorLoadInProgress, Wait, "the group coordinator is loading"),
	all(kerr.CoordinatorNotAvailable, Wait, "the group coordinator is moving"),
	all(kerr.NotCoordinator, Wait, "the group coordinator is moving"),
	all(kerr.RebalanceInProgress, Wait, "the group is rebalancing"),
	all(kerr.IllegalGeneration, Wait, "the group rebalanced meanwhile"),
	all(kerr.UnknownMemberID, Wait, "the group forgot this member: it joins again"),
	all(kerr.UnstableOffsetCommit, Wait, "a transaction on the partition is still open"),
	all(kerr.OffsetNotAvailable, Wait, leaderMoving),
	all(kerr.OffsetOutOfRange, Wait, "records were deleted before they were read (retention?)"),
	all(kerr.ReassignmentInProgress, Wait, "the partition is being moved"),

	// The record's own fault.
	written(kerr.MessageTooLarge, DeadLetter, "the record is larger than the topic's max.message.bytes"),
	written(kerr.RecordListTooLarge, DeadLetter, "the batch is larger than the broker accepts"),
	written(kerr.InvalidTimestamp, DeadLetter, "the record's timestamp is outside what the topic accepts (message.timestamp.*.max.ms)"),
	written(kerr.InvalidRecord, DeadLetter, "the broker refused the record (a compacted topic needs a key)"),
	// The client sends it once more itself (a batch damaged on its way passes then); a
	// record refused again is one the broker cannot take (older brokers answer it for a
	// null key on a compacted topic).
	written(kerr.CorruptMessage, DeadLetter, "the broker found the record damaged or invalid (a null key on a compacted topic?)"),

	// A broker answers this for a moment while a topic is created or its partitions move, so
	// it waits. Whether a topic exists is decided before writing: at start for the topics the
	// file names (a missing one stops the pipeline), per record for computed ones (dead-letter).
	all(kerr.UnknownTopicOrPartition, Wait, "does the topic exist? pythia-pipe topics create makes it"),

	// Topics: a topic the file names is the pipeline's business; one a record computed is
	// the record's.
	topicRule(kerr.InvalidTopicException, Stop, Stop, "the topic name is not valid", "the computed topic name is not valid"),
	topicRule(kerr.TopicAuthorizationFailed, Stop, Stop, noACL, "this user may not write to the computed topic"),
	topicRule(kerr.PolicyViolation, Stop, Stop, "a broker policy refused the request", "a broker policy refused the computed topic"),

	// The pipeline's fault: settings, rights and versions that waiting will not change.
	all(kerr.ClusterAuthorizationFailed, Stop, noACL),
	all(kerr.GroupAuthorizationFailed, Stop, "may this user join the consumer group? check its ACLs"),
	all(kerr.TransactionalIDAuthorizationFailed, Stop, noACL),
	all(kerr.SaslAuthenticationFailed, Stop, "wrong user name or password?"),
	all(kerr.UnsupportedSaslMechanism, Stop, "the broker does not enable this SASL mechanism"),
	all(kerr.IllegalSaslState, Stop, "SASL went wrong: is the protocol right?"),
	all(kerr.SecurityDisabled, Stop, "the broker has no security configured"),
	all(kerr.UnsupportedVersion, Stop, "the broker is older than kafka.version says"),
	all(kerr.UnsupportedForMessageFormat, Stop, "the topic's message format is too old for this request"),
	all(kerr.UnsupportedCompressionType, Stop, "the broker does not support this compression"),
	all(kerr.InvalidRequiredAcks, Stop, "the broker refuses this acks setting"),
	all(kerr.InvalidRequest, Stop, "the broker refused the request as malformed"),
	all(kerr.InvalidConfig, Stop, "the broker refused a setting"),
	all(kerr.InvalidGroupID, Stop, "the group name is not valid"),
	all(kerr.InconsistentGroupProtocol, Stop, "other members of the group use another assignment strategy (source.rebalance)"),
	all(kerr.InvalidSessionTimeout, Stop, "source.session_timeout is outside the broker's group.min/max.session.timeout.ms"),
	all(kerr.GroupMaxSizeReached, Stop, "the group has as many members as the broker allows"),
	all(kerr.FencedInstanceID, Stop, "another process uses the same source.instance_id: give each its own"),
	all(kerr.ProducerFenced, Stop, "another producer took over this one's transactional id: is source.instance_id shared by two processes?"),
	all(kerr.TransactionCoordinatorFenced, Stop, "another producer took over this one's transactional id: is source.instance_id shared by two processes?"),
	// A new client (a new producer epoch) gets past these two, unless another instance
	// took the transactional id: the fenced answers above say so.
	all(kerr.InvalidProducerIDMapping, Wait, "the broker no longer knows this producer's transactional id (expired after transactional.id.expiration.ms, or the transaction timed out)"),
	all(kerr.InvalidTxnState, Wait, "the broker's view of the transaction differs from the client's (it timed the transaction out?)"),
}

var byCode = func() map[int16]rule {
	m := make(map[int16]rule, len(table))
	for _, r := range table {
		m[r.code.Code] = r
	}
	return m
}()

// SettingError is a setting a client refuses: waiting will not change it (the stop of the
// table). kafkaio hands a client's configuration errors on as one.
type SettingError interface {
	error
	Setting()
}
