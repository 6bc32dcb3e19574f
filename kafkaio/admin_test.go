package kafkaio

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

// startBroker starts an in-process broker holding topics, stopped when the test ends.
func startBroker(t *testing.T, topics []kafkaconn.Topic, opts ...kfake.Opt) *devbroker.Broker {
	t.Helper()
	b, err := devbroker.Start(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	for _, topic := range topics {
		if err := b.CreateTopicWith(topic.Name, topic.Partitions, topic.Configs); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// newAdmin opens the admin of c, closed when the test ends.
func newAdmin(t *testing.T, c *kafkaconn.Config) *Admin {
	t.Helper()
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 3 * time.Second
	}
	a, err := NewAdmin(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// countRequests counts the requests of key the cluster of b is sent from now on.
func countRequests(b *devbroker.Broker, key kmsg.Key) *atomic.Int64 {
	var n atomic.Int64
	b.Cluster.ControlKey(key.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster.KeepControl()
		n.Add(1)
		return nil, nil, false
	})
	return &n
}

// The startup check on an in-process broker: what it finds, and each failure in one line
// within the connect timeout (and a second).
func TestCheck(t *testing.T) {
	plain := startBroker(t, []kafkaconn.Topic{{Name: "in", Partitions: 3, Configs: map[string]string{"max.message.bytes": "4096"}},
		{Name: "out", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}}})
	secured := startBroker(t, nil, kfake.EnableSASL(), kfake.Superuser("PLAIN", "alice", "alice-secret"))
	sasl := func(password string) *kafkaconn.SASL {
		return &kafkaconn.SASL{Mechanism: "PLAIN", Username: "alice", Password: password}
	}
	cases := []struct {
		name    string
		c       kafkaconn.Config
		topics  []string
		want    string // in the error; "" for none
		missing []string
	}{
		{"every topic exists", kafkaconn.Config{Brokers: plain.Addrs()}, []string{"in", "out"}, "", nil},
		{"no topics: the brokers answer", kafkaconn.Config{Brokers: plain.Addrs()}, nil, "", nil},
		{"missing topics, sorted", kafkaconn.Config{Brokers: plain.Addrs()}, []string{"zeta", "in", "alpha"}, "topic(s) alpha, zeta do not exist", []string{"alpha", "zeta"}},
		{"no broker there", kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}}, nil, "connection refused: is Kafka running there", nil},
		{"SASL with the right password", kafkaconn.Config{Brokers: secured.Addrs(), SASL: sasl("alice-secret")}, nil, "", nil},
		{"a wrong password", kafkaconn.Config{Brokers: secured.Addrs(), SASL: sasl("not-the-password")}, nil, "SASL authentication failed for user alice", nil},
		{"TLS to a plaintext port", kafkaconn.Config{Brokers: plain.Addrs(), TLS: &kafkaconn.TLS{}}, nil, "does this port speak TLS?", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAdmin(t, &c.c)
			began := time.Now()
			rules, err := a.Check(context.Background(), c.topics)
			if took := time.Since(began); took > c.c.ConnectTimeout+2*time.Second {
				t.Errorf("took %v; the connect timeout is %v", took, c.c.ConnectTimeout)
			}
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, topic := range c.topics {
					if _, ok := rules[topic]; !ok {
						t.Errorf("no rules for %s: %v", topic, rules)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "not-the-password") {
				t.Fatalf("got %v, want one line with %q", err, c.want)
			}
			var missing *MissingTopicsError
			if errors.As(err, &missing) != (c.missing != nil) || (c.missing != nil && !slices.Equal(missing.Topics, c.missing)) {
				t.Errorf("missing topics %v, want %v", missing, c.missing)
			}
		})
	}
	t.Run("the rules of the topics", func(t *testing.T) {
		rules, err := newAdmin(t, &kafkaconn.Config{Brokers: plain.Addrs()}).Check(context.Background(), []string{"in", "out"})
		if err != nil {
			t.Fatal(err)
		}
		if in, out := rules["in"], rules["out"]; in.MaxBytes != 4096 || in.Compacted || !out.Compacted || !out.CreateTime {
			t.Errorf("rules %+v", rules)
		}
	})
}

// A topic created a moment ago, not yet in the metadata the check is first given, is found
// at its second look.
func TestCheckLooksAgain(t *testing.T) {
	b := startBroker(t, []kafkaconn.Topic{{Name: "fresh", Partitions: 1}})
	var looks atomic.Int64
	b.Cluster.ControlKey(kmsg.Metadata.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster.KeepControl()
		r := req.(*kmsg.MetadataRequest)
		if len(r.Topics) == 0 || looks.Add(1) > 1 {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		for _, rt := range r.Topics { // the first look: as a broker that has not heard of it yet
			st := kmsg.NewMetadataResponseTopic()
			st.Topic, st.ErrorCode = rt.Topic, kerr.UnknownTopicOrPartition.Code
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	if _, err := newAdmin(t, &kafkaconn.Config{Brokers: b.Addrs()}).Check(context.Background(), []string{"fresh"}); err != nil {
		t.Fatal(err)
	}
	if looks.Load() != 2 {
		t.Errorf("%d looks at the topic, want 2", looks.Load())
	}
}

// A sink asks for a topic's partition count with every record: franz-go's metadata cache
// answers, so that a run of records makes one request; a missing topic is told at once,
// and remembered as long.
func TestPartitions(t *testing.T) {
	b := startBroker(t, []kafkaconn.Topic{{Name: "orders", Partitions: 3}})
	a := newAdmin(t, &kafkaconn.Config{Brokers: b.Addrs()})
	requests := countRequests(b, kmsg.Metadata)
	cases := []struct {
		name  string
		topic string
		want  int32
		err   error
	}{
		{"a topic", "orders", 3, nil},
		{"a missing topic", "nowhere", 0, kerr.UnknownTopicOrPartition},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := requests.Load()
			for range 1000 {
				n, err := a.Partitions(context.Background(), c.topic)
				if n != c.want || !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
					t.Fatalf("got %d, %v; want %d, %v", n, err, c.want, c.err)
				}
			}
			if made := requests.Load() - before; made > 1 {
				t.Errorf("%d metadata requests for 1000 lookups, want 1", made)
			}
		})
	}
}

func BenchmarkPartitions(b *testing.B) {
	br, err := devbroker.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	if err := br.CreateTopic("orders", 12); err != nil {
		b.Fatal(err)
	}
	a, err := NewAdmin(&kafkaconn.Config{Brokers: br.Addrs(), ConnectTimeout: 3 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Partitions(context.Background(), "orders"); err != nil {
			b.Fatal(err)
		}
	}
}

// delivery: exactly_once needs brokers that commit offsets in a transaction with the group's
// generation (TxnOffsetCommit v3, KIP-447).
func TestCheckTransactions(t *testing.T) {
	cases := []struct {
		name   string
		maxTxn int16 // the highest TxnOffsetCommit version the broker answers; -1: none, 0: kfake's own
		want   string
	}{
		{"a broker of today", 0, ""},
		{"before Kafka 2.5", 2, "needs brokers 2.5 or newer"},
		{"no transactions", -1, "do not answer TxnOffsetCommit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := startBroker(t, nil)
			if c.maxTxn != 0 {
				b.Cluster.ControlKey(kmsg.ApiVersions.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
					b.Cluster.KeepControl()
					resp := req.(*kmsg.ApiVersionsRequest).ResponseKind().(*kmsg.ApiVersionsResponse)
					resp.SetVersion(req.GetVersion())
					for _, k := range []struct{ key, max int16 }{{kmsg.ApiVersions.Int16(), 3}, {kmsg.Metadata.Int16(), 9}, {kmsg.TxnOffsetCommit.Int16(), c.maxTxn}} {
						if k.max >= 0 {
							resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k.key, MaxVersion: k.max})
						}
					}
					return resp, nil, true
				})
			}
			err := newAdmin(t, &kafkaconn.Config{Brokers: b.Addrs()}).CheckTransactions(context.Background())
			if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}

// The rules of topics, as DescribeConfigs gives them: a topic's own settings and the broker's
// defaults; a topic that does not exist is left out.
func TestRules(t *testing.T) {
	b := startBroker(t, []kafkaconn.Topic{{Name: "small", Partitions: 1, Configs: map[string]string{"max.message.bytes": "4096"}},
		{Name: "table", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact,delete", "message.timestamp.type": "LogAppendTime"}},
		{Name: "plain", Partitions: 1}})
	rules := newAdmin(t, &kafkaconn.Config{Brokers: b.Addrs()}).Rules(context.Background(), "small", "table", "plain", "nowhere")
	cases := []struct {
		topic string
		want  TopicRules
		found bool
	}{
		{"small", TopicRules{MaxBytes: 4096, CreateTime: true}, true},
		{"table", TopicRules{MaxBytes: rules["plain"].MaxBytes, Compacted: true}, true},
		{"plain", TopicRules{MaxBytes: rules["plain"].MaxBytes, CreateTime: true}, true},
		{"nowhere", TopicRules{}, false},
	}
	for _, c := range cases {
		t.Run(c.topic, func(t *testing.T) {
			got, found := rules[c.topic]
			if got != c.want || found != c.found {
				t.Errorf("got %+v (%v), want %+v (%v)", got, found, c.want, c.found)
			}
		})
	}
	if rules["plain"].MaxBytes <= 4096 {
		t.Errorf("the broker's default max.message.bytes is %d", rules["plain"].MaxBytes)
	}
}

// A replay's group: members and committed offsets, none for a group never used.
func TestGroups(t *testing.T) {
	b := startBroker(t, []kafkaconn.Topic{{Name: "orders-dlq", Partitions: 2}})
	if err := b.Produce(context.Background(), "orders-dlq", devbroker.OrdersFeed(10)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit("used", "orders-dlq", map[int32]int64{0: 3}); err != nil {
		t.Fatal(err)
	}
	a := newAdmin(t, &kafkaconn.Config{Brokers: b.Addrs()})
	cases := []struct {
		group   string
		offsets map[string]map[int32]int64
	}{
		{"never-used", map[string]map[int32]int64{}},
		{"used", map[string]map[int32]int64{"orders-dlq": {0: 3}}},
	}
	for _, c := range cases {
		t.Run(c.group, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if n, err := a.GroupMembers(ctx, c.group); n != 0 || err != nil {
				t.Errorf("members: %d, %v", n, err)
			}
			offsets, err := a.GroupOffsets(ctx, c.group)
			if err != nil || !maps.EqualFunc(offsets, c.offsets, maps.Equal) {
				t.Errorf("offsets: %v, %v; want %v", offsets, err, c.offsets)
			}
		})
	}
}
