package kafkaio

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata tells topics' partition counts from franz-go's metadata cache: a sink asks for
// every record it writes, and a request each time would be one per record.
type Metadata struct {
	cl *kgo.Client
}

// metadataAge is how long a topic's partition count is taken as known: partitions added to
// a topic are written to within it.
const metadataAge = 30 * time.Second

// metadataWait bounds one lookup: a missing topic must be told at once, and a lookup must
// not hold up a stop for long.
const metadataWait = 5 * time.Second

// NewMetadata connects a metadata client with conn.
func NewMetadata(conn []kgo.Opt) (*Metadata, error) {
	cl, err := kgo.NewClient(slices.Clone(conn)...)
	if err != nil {
		return nil, err
	}
	return &Metadata{cl: cl}, nil
}

// Partitions is how many partitions topic has: an error wrapping kerr.UnknownTopicOrPartition
// when it does not exist, another when the brokers cannot say now.
func (m *Metadata) Partitions(topic string) (int32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), metadataWait)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = &topic
	req.Topics = append(req.Topics, t)
	resp, err := m.cl.RequestCachedMetadata(ctx, req, metadataAge)
	if err != nil {
		return 0, err
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || *rt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return 0, fmt.Errorf("topic %s: %w", topic, err)
		}
		if len(rt.Partitions) == 0 {
			return 0, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
		}
		return int32(len(rt.Partitions)), nil
	}
	return 0, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
}

// Close closes the client.
func (m *Metadata) Close() { m.cl.Close() }
