package kafkaio

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

// Admin is the layer's admin on one franz-go client: the startup check, topics' rules and
// partition counts, topic creation, offsets and groups, the brokers' transaction support. It
// is safe for concurrent use; Close it when done.
type Admin struct {
	c    *kafkaconn.Config
	conn []kgo.Opt // the connection, for the Readers and Writers opened beside the admin
	cl   *kgo.Client
	adm  *kadm.Client
	// wait is the connect timeout. It bounds the startup check (with a second) and each
	// lookup of a running pipeline (partitions, rules): a broker that does not answer must be
	// told to the caller, which waits and says so, not hang it.
	wait time.Duration

	mu     sync.RWMutex
	counts map[string]counted // partition counts, by topic
}

// counted is a topic's partition count and when it was read.
type counted struct {
	n  int32
	at time.Time
}

// defaultWait is the bound of a lookup when the connection sets no connect timeout (a
// Config built in code rather than read from a file).
const defaultWait = 10 * time.Second

// NewAdmin opens the admin of the connection c. It makes no request: Check is the first.
func NewAdmin(c *kafkaconn.Config) (*Admin, error) {
	conn, err := Conn(c)
	if err != nil {
		return nil, err
	}
	// A topic the admin has just created (a stateful stage's changelog) is looked up at once:
	// franz-go's 5 s between metadata refreshes would have it missing meanwhile.
	cl, err := kgo.NewClient(append(slices.Clone(conn), kgo.MetadataMinAge(100*time.Millisecond))...)
	if err != nil {
		return nil, err
	}
	wait := c.ConnectTimeout
	if wait <= 0 {
		wait = defaultWait
	}
	return &Admin{c: c, conn: conn, cl: cl, adm: kadm.NewClient(cl), wait: wait, counts: map[string]counted{}}, nil
}

// Close closes the admin's client.
func (a *Admin) Close() { a.cl.Close() }

// partitionsAge is how old a topic's partition count may be. A sink asks for every record:
// franz-go's metadata cache answers, and asks the brokers again once the count is this old,
// so partitions added to a topic are used within it.
const partitionsAge = 5 * time.Second

// Partitions is the number of partitions of topic, from metadata at most partitionsAge old.
// A topic that does not exist is an error wrapping kerr.UnknownTopicOrPartition at once
// (franz-go does not retry a topic's error, and remembers it as long as a count); other
// errors (brokers away) come within the connect timeout.
//
// franz-go's cache answers with a copy of the topic's metadata (some 40 allocations and
// 3.6 µs for 12 partitions), too much for every record: the count is kept beside it.
func (a *Admin) Partitions(ctx context.Context, topic string) (int32, error) {
	a.mu.RLock()
	c, ok := a.counts[topic]
	a.mu.RUnlock()
	if ok && time.Since(c.at) < partitionsAge {
		return c.n, nil
	}
	n, err := a.partitions(ctx, topic)
	if err == nil {
		a.mu.Lock()
		a.counts[topic] = counted{n: n, at: time.Now()}
		a.mu.Unlock()
	}
	return n, err
}

func (a *Admin) partitions(ctx context.Context, topic string) (int32, error) {
	ctx, cancel := context.WithTimeout(ctx, a.wait)
	defer cancel()
	resp, err := a.cl.RequestCachedMetadata(ctx, metadataRequest(topic), partitionsAge)
	var t *kmsg.MetadataResponseTopic
	if err == nil {
		t, err = topicIn(resp, topic)
	}
	if err != nil {
		return 0, fmt.Errorf("looking up topic %s: %w", topic, err)
	}
	return int32(len(t.Partitions)), nil
}

// metadataRequest asks for the metadata of topics (sent as it is, it creates none; franz-go's
// cache asks as the client is configured); with none, for the brokers' only.
func metadataRequest(topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// topicIn is topic's part of a metadata answer, or its error: a topic the answer leaves out,
// or gives no partitions, does not exist.
func topicIn(resp *kmsg.MetadataResponse, topic string) (*kmsg.MetadataResponseTopic, error) {
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, err
		}
		if len(t.Partitions) > 0 {
			return t, nil
		}
	}
	return nil, kerr.UnknownTopicOrPartition
}

// CheckTransactions asks the brokers whether they commit offsets in transactions with the
// group's generation (KIP-447, Kafka 2.5): without it a zombie member could commit.
func (a *Admin) CheckTransactions(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.wait)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, a.cl)
	if err != nil {
		return fmt.Errorf("delivery: exactly_once: asking the brokers which requests they take: %w", err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == kmsg.TxnOffsetCommit.Int16() {
			if k.MaxVersion >= 3 {
				return nil
			}
			return fmt.Errorf("delivery: exactly_once needs brokers 2.5 or newer (KIP-447: offsets committed in a transaction with the group's generation); these answer TxnOffsetCommit up to version %d", k.MaxVersion)
		}
	}
	return fmt.Errorf("delivery: exactly_once needs brokers that take transactions; these do not answer TxnOffsetCommit")
}
