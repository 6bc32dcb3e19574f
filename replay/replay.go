// Package replay writes dead-lettered records back to the topics they were read from, once
// what made them fail is fixed (`pythia-pipe dlq replay`). This file decides what each DLQ
// record becomes; kafka.go reads the DLQ and writes through kafkaio.
package replay

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/dlq"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

// Options choose what is replayed and how.
type Options struct {
	Group      string    // the consumer group that keeps the replay's progress
	Stage      string    // only records that failed at this stage ("": any)
	Error      string    // only records whose pythia.error holds this text ("": any)
	Since      time.Time // only records that failed at or after this time (zero: any)
	Until      time.Time // only records that failed before this time (zero: any)
	MaxReplays int       // a record replayed this often already is skipped: it failed again
	Rate       float64   // records written a second at most; 0: no limit
	DryRun     bool      // say what would be replayed; write and commit nothing
	// To, when set, is the topic every replayed record is written to, whatever its
	// pythia.source.topic says. Without it a record goes back to its pythia.source.topic
	// only when that is a topic the pipeline reads: anyone who can write to the DLQ can
	// write that header, and the replay's credentials may reach any topic.
	To string
	// ReadUncommitted reads the DLQ's aborted and open transactions too. By default the DLQ
	// is read as the pipeline's readers read: read_committed (an exactly-once pipeline's
	// aborted transactions hold copies of the records its committed ones dead-lettered).
	ReadUncommitted bool
	// Show receives each record that is (or, dry, would be) replayed, as written, one at a
	// time.
	Show func(*kafkaio.Message)
	// Refuse receives each DLQ record refused for its pythia.source.topic (the topic it
	// names), one at a time.
	Refuse func(from *kafkaio.Message, topic string)
}

// Stats counts what a replay read and did.
type Stats struct {
	Read, Replayed                             int
	Filtered, ReplayedBefore, Truncated, Alien int // skipped, and why
	Refused                                    int // their pythia.source.topic is not a topic the pipeline reads
}

func (s Stats) String() string {
	line := fmt.Sprintf("read %d, replayed %d; skipped: %d not matching, %d failed again after a replay, %d cut short by the DLQ, %d not from a pipeline (no %s); refused: %d from a topic the pipeline does not read",
		s.Read, s.Replayed, s.Filtered, s.ReplayedBefore, s.Truncated, s.Alien, dlq.HeaderSourceTopic, s.Refused)
	if s.Refused > 0 {
		line += " (--to TOPIC writes every replayed record to TOPIC)"
	}
	return line
}

// why a record is not replayed
type skip int

const (
	write skip = iota
	filtered
	replayedBefore
	truncated
	alien
	refused
)

func (s *Stats) add(why skip) {
	s.Read++
	switch why {
	case write:
		s.Replayed++
	case filtered:
		s.Filtered++
	case replayedBefore:
		s.ReplayedBefore++
	case truncated:
		s.Truncated++
	case alien:
		s.Alien++
	case refused:
		s.Refused++
	}
}

// decider turns DLQ records into the records replaying them writes.
type decider struct {
	opts Options
	// targets are the topics a replay may write to, with their partitions: the pipeline's
	// source topics, or the one Options.To names.
	targets map[string]int32
}

// message is what replaying m writes: its key, value and headers as the source had them (the
// pythia.* headers dropped) with pythia.replayed counted up, to the topic and partition it was
// read from; or why it is not replayed.
func (d *decider) message(m *kafkaio.Message) (*kafkaio.Message, skip) {
	info, kept := decode(m)
	o, topic := d.opts, info.Source.Topic
	if o.To != "" {
		topic = o.To
	}
	n, known := d.targets[topic]
	failedAt := info.Failure.At
	switch {
	case info.Source.Topic == "":
		return nil, alien
	case !known:
		return nil, refused
	case info.Truncated != dlq.Uncut:
		return nil, truncated
	case o.Stage != "" && info.Failure.Stage != o.Stage,
		o.Error != "" && !strings.Contains(info.Failure.Reason, o.Error),
		!o.Since.IsZero() && failedAt.Before(o.Since),
		!o.Until.IsZero() && !failedAt.Before(o.Until):
		return nil, filtered
	case info.Replayed >= o.MaxReplays:
		return nil, replayedBefore
	}
	kept = append(kept, kafkaio.Header{Key: dlq.HeaderReplayed, Value: []byte(strconv.Itoa(info.Replayed + 1))})
	out := &kafkaio.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: kept, Timestamp: m.Timestamp}
	if p := info.Source.Partition; p >= 0 && p < n {
		out.Partition = p // where it was read: its key's other records are there
	} else {
		out.Partition = sinks.PartitionFor(m.Key, n)
	}
	return out, write
}

// decode reads what m's headers of the DLQ format say, and returns its other headers, the
// source's. A header whose value cannot be read counts as missing: a partition goes by the
// key's hash, a time matches no --since, a replay count is 0.
func decode(m *kafkaio.Message) (dlq.Info, []kafkaio.Header) {
	var own, kept []kafkaio.Header
	for _, h := range m.Headers {
		if dlq.IsHeader(h.Key) {
			own = append(own, h)
			continue
		}
		kept = append(kept, h)
	}
	info, _ := dlq.Decode(own)
	return info, kept
}

// sourceTopic is the topic m's pythia.source.topic names: what a refusal is about.
func sourceTopic(m *kafkaio.Message) string {
	info, _ := decode(m)
	return info.Source.Topic
}
