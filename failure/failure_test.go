package failure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

type badSetting string

func (b badSetting) Error() string { return string(b) }
func (badSetting) Setting()        {}

type tooBig struct{}

func (tooBig) Error() string { return "too big" }
func (tooBig) RecordFault()  {}

func TestJudge(t *testing.T) {
	cases := []struct {
		name string
		op   Op
		err  error
		want Outcome
	}{
		{"too few replicas waits", Produce, kerr.NotEnoughReplicas, Wait},
		{"a leader election waits", Produce, kerr.NotLeaderForPartition, Wait},
		{"a timeout waits", Produce, kerr.RequestTimedOut, Wait},
		{"no broker waits", Produce, errors.New("client has run out of available brokers to talk to"), Wait},
		{"a refused connection waits", Produce, &net.OpError{Op: "dial", Err: errors.New("connection refused")}, Wait},
		{"a code the table does not know waits", Produce, &kerr.Error{Message: "NEWER_THAN_THE_TABLE", Code: 9999}, Wait},
		{"too large is the record's", Produce, kerr.MessageTooLarge, DeadLetter},
		{"an invalid record is the record's", Produce, kerr.InvalidRecord, DeadLetter},
		{"a record fault is the record's whatever the op", Consume, tooBig{}, DeadLetter},
		{"a topic the broker does not know for a moment waits", Produce, kerr.UnknownTopicOrPartition, Wait},
		{"so does a computed one: its existence is checked before", ProduceComputed, kerr.UnknownTopicOrPartition, Wait},
		{"a missing source topic waits", Consume, kerr.UnknownTopicOrPartition, Wait},
		{"an invalid computed topic is the record's", ProduceComputed, kerr.InvalidTopicException, DeadLetter},
		{"an invalid named topic stops", Produce, kerr.InvalidTopicException, Stop},
		{"no right to a named topic stops", Produce, fmt.Errorf("wrapped: %w", kerr.TopicAuthorizationFailed), Stop},
		{"no right to a computed topic is the record's", ProduceComputed, kerr.TopicAuthorizationFailed, DeadLetter},
		{"no right to the group stops", Consume, kerr.GroupAuthorizationFailed, Stop},
		{"a fenced static member stops", Consume, kerr.FencedInstanceID, Stop},
		{"a wrong password stops", Consume, kerr.SaslAuthenticationFailed, Stop},
		{"a setting the client refuses stops", Produce, badSetting("Net.MaxOpenRequests must be > 0"), Stop},
		{"a stage error is the record's", Process, errors.New("bad json"), DeadLetter},
		{"a stage cut short by a stop is no one's", Process, context.Canceled, Wait},
		{"franz-go's errors read the same table: a fenced producer stops", Produce, fmt.Errorf("ending: %w", kerr.ProducerFenced), Stop},
		{"franz-go's too large is the record's", Produce, kerr.MessageTooLarge, DeadLetter},
		{"franz-go's leader election waits", Produce, kerr.NotLeaderForPartition, Wait},
		{"a corrupt record, once the client sent it again, is the record's", Produce, kerr.CorruptMessage, DeadLetter},
		{"a corrupt batch read waits", Consume, kerr.CorruptMessage, Wait},
		{"a transaction's end that timed out waits: a new client finds out", EndTxn, kerr.RequestTimedOut, Wait},
		{"a connection dropped at a transaction's end waits", EndTxn, &net.OpError{Op: "read", Err: errors.New("connection reset")}, Wait},
		{"a record's fault cannot end a transaction: it waits", EndTxn, kerr.MessageTooLarge, Wait},
		{"a transaction the broker timed out waits for a new client", EndTxn, kerr.InvalidProducerIDMapping, Wait},
		{"a fenced producer stops at a transaction's end", EndTxn, kerr.ProducerFenced, Stop},
		{"no right to the transactional id stops", EndTxn, kerr.TransactionalIDAuthorizationFailed, Stop},
		{"a fenced static member stops at a transaction's end", EndTxn, kerr.FencedInstanceID, Stop},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Judge(c.op, "sink out", "t", c.err).Outcome; got != c.want {
				t.Errorf("Judge(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestErrorSaysWhyAndWhere(t *testing.T) {
	cases := []struct {
		name string
		e    *Error
		want []string
	}{
		{"a named topic", Judge(Produce, "sink out", "orders-out", kerr.UnknownTopicOrPartition),
			[]string{"sink out cannot write to topic orders-out", "does the topic exist?"}},
		{"a computed topic", Judge(ProduceComputed, "sink out", "orders-x", kerr.TopicAuthorizationFailed),
			[]string{"this user may not write to the computed topic"}},
		{"no rights", Judge(Produce, "sink out", "t", kerr.TopicAuthorizationFailed), []string{"check its ACLs"}},
		{"a stage", Judge(Process, "stage parse", "", errors.New("bad json")), []string{"stage parse: bad json"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, w := range c.want {
				if !strings.Contains(c.e.Error(), w) {
					t.Errorf("%q does not say %q", c.e.Error(), w)
				}
			}
			if !errors.Is(c.e, c.e.Err) {
				t.Error("the cause does not unwrap")
			}
		})
	}
	if r := Judge(Produce, "sink out", "t", kerr.MessageTooLarge).Reason(); !strings.Contains(r, "max.message.bytes") {
		t.Errorf("reason %q gives no likely cause", r)
	}
}

// Each Kafka error has one row: a second would be silently ignored.
func TestTableHasOneRowPerCode(t *testing.T) {
	seen := map[int16]bool{}
	for _, r := range Rows() {
		if seen[r.Code.Code] {
			t.Errorf("%v has two rows", r.Code)
		}
		seen[r.Code.Code] = true
	}
}
