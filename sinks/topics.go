package sinks

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

// missingFor is how long a computed topic found missing is taken as missing before it is
// looked up again (someone may create it).
const missingFor = 30 * time.Second

const missingTopic = "the topic does not exist, and records never create topics"

// TopicError is a computed topic a record may not be written to: not a valid name, not in
// topic_allow, or not existing.
type TopicError struct {
	Topic  string
	Reason string
}

func (e *TopicError) Error() string { return fmt.Sprintf("computed topic %q: %s", e.Topic, e.Reason) }

// RecordFault marks the error as its record's fault.
func (*TopicError) RecordFault() {}

// Partitioned tells how many partitions a topic has (kafkaio.Admin): an error wrapping
// kerr.UnknownTopicOrPartition, at once, for a topic that does not exist. A sink asks it for
// every record, so it answers from a cache.
type Partitioned interface {
	Partitions(ctx context.Context, topic string) (int32, error)
}

// topicChecker looks up how many partitions a topic has, and decides whether a record may be
// written to the topic it computed. Records never create topics.
type topicChecker struct {
	lookup Partitioned
	allow  []string

	mu      sync.Mutex
	missing map[string]time.Time // topics found missing, and when
}

func newTopicChecker(lookup Partitioned, allow []string) *topicChecker {
	return &topicChecker{lookup: lookup, allow: allow, missing: map[string]time.Time{}}
}

// partitions returns the partition count of a computed topic, a *TopicError when the record
// may not go there, or another error (brokers away: try again later).
func (c *topicChecker) partitions(ctx context.Context, topic string) (int32, error) {
	if err := mayWrite(c.allow, topic); err != nil {
		return 0, err
	}
	c.mu.Lock()
	since, known := c.missing[topic]
	c.mu.Unlock()
	if known && time.Since(since) < missingFor {
		return 0, &TopicError{Topic: topic, Reason: missingTopic}
	}
	n, err := c.lookup.Partitions(ctx, topic)
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		c.mu.Lock()
		c.forgetOld()
		c.missing[topic] = time.Now()
		c.mu.Unlock()
		return 0, &TopicError{Topic: topic, Reason: missingTopic}
	case err != nil:
		return 0, err
	}
	if known {
		c.mu.Lock()
		delete(c.missing, topic)
		c.mu.Unlock()
	}
	return n, nil
}

// forgetOld drops the topics found missing longer ago than missingFor, so that records naming
// ever new topics do not grow the list without end.
func (c *topicChecker) forgetOld() {
	if len(c.missing) < 1024 {
		return
	}
	for t, since := range c.missing {
		if time.Since(since) >= missingFor {
			delete(c.missing, t)
		}
	}
}

// mayWrite is the TopicError of a computed topic that is no topic name, or that allow does not
// list; nil when the topic may be written to, if it exists.
func mayWrite(allow []string, topic string) error {
	if problem := kafkaconn.TopicNameProblem(topic); problem != "" {
		return &TopicError{Topic: topic, Reason: problem}
	}
	if !Allowed(allow, topic) {
		return &TopicError{Topic: topic, Reason: "not in the sink's topic_allow (" + strings.Join(allow, ", ") + ")"}
	}
	return nil
}

// Allowed reports whether topic matches one of the patterns (* for any characters); with no
// patterns every topic is allowed.
func Allowed(patterns []string, topic string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, topic); ok {
			return true
		}
	}
	return false
}

// PartitionFor picks a record's partition: by the hash of its key, as sarama's (and so far
// pythia-pipe's) hash partitioner does, or at random without a key. dlq replay uses it too, for a
// record whose partition is gone, so that its key joins the key's other records.
func PartitionFor(key []byte, n int32) int32 {
	if key == nil {
		return rand.Int32N(n) // #nosec G404 -- spreading load, not security
	}
	h := fnv.New32a()
	h.Write(key)
	p := int32(h.Sum32()) % n
	if p < 0 {
		p = -p
	}
	return p
}
