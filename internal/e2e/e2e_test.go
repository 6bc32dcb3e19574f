//go:build e2e

package e2e

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/realkafka"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// The correctness test of the run issue on real Kafka: 100,000 records through the orders
// example; every record where it belongs, committed offsets at the log end.
func TestOrders100k(t *testing.T) {
	const n = 100_000
	file, topics, group := ordersFile(t, "plain", "  brokers: "+kafka.Real.Addr("plaintext")+"\n")
	if err := kafka.Produce(context.Background(), topics[0], devbroker.OrdersFeed(n)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	runUntilDone(t, file, group, topics[0])
	took := time.Since(began)
	dups := checkOrders(t, kafka, topics, n)
	committed, ends := kafka.Committed(group, topics[0]), kafka.EndOffsets(topics[0])
	for p, end := range ends {
		if committed[p] != end {
			t.Errorf("partition %d committed %d, log end %d", p, committed[p], end)
		}
	}
	t.Logf("100,000 records in %v (process start and group join included), %d duplicates", took.Round(time.Millisecond), dups)
	if dups != 0 {
		t.Errorf("%d duplicates in a run without failures", dups)
	}
}

// The feeds carry timestamps from 2023: a broker with time-based retention would delete them at
// its first retention check, 30 s after start, in the middle of whichever test is running.
func TestBrokerKeepsOldRecords(t *testing.T) {
	if err := kafka.CreateTopic("retention", 1); err != nil {
		t.Fatal(err)
	}
	if got := kafka.TopicConfig("retention", "retention.ms"); got != "-1" {
		t.Fatalf("retention.ms is %q: kafka/server.properties must set log.retention.ms=-1", got)
	}
}

// The orders example over each security protocol: SASL/PLAIN, SASL/SCRAM-SHA-512, TLS and
// mutual TLS. The password travels through the environment and appears in no output.
func TestSecurity(t *testing.T) {
	tls := kafka.Real.TLS
	cases := []struct {
		name, block, password string
	}{
		{"sasl-plain", "  brokers: " + kafka.Real.Addr("sasl") + "\n  security:\n    protocol: SASL_PLAINTEXT\n" +
			"    sasl: {mechanism: PLAIN, username: " + realkafka.PlainUser + ", password: ${KAFKA_PASSWORD}}\n", realkafka.PlainPassword},
		{"sasl-scram", "  brokers: " + kafka.Real.Addr("sasl") + "\n  security:\n    protocol: SASL_PLAINTEXT\n" +
			"    sasl: {mechanism: SCRAM-SHA-512, username: " + realkafka.ScramUser + ", password: ${KAFKA_PASSWORD}}\n", realkafka.ScramPassword},
		{"tls", "  brokers: " + kafka.Real.Addr("ssl") + "\n  security:\n    protocol: SSL\n    tls: {ca_file: " + tls.CA + "}\n", ""},
		{"mtls", "  brokers: " + kafka.Real.Addr("mtls") + "\n  security:\n    protocol: SSL\n" +
			"    tls: {ca_file: " + tls.CA + ", cert_file: " + tls.ClientCert + ", key_file: " + tls.ClientKey + "}\n", ""},
	}
	// The exactly-once path connects with franz-go, from the same kafka block: SASL/SCRAM
	// and mutual TLS again, exactly once.
	for _, c := range [][3]string{{"sasl-scram-eos", cases[1].block, cases[1].password}, {"mtls-eos", cases[3].block, ""}} {
		cases = append(cases, struct{ name, block, password string }{c[0], c[1], c[2]})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const n = 2000
			file, topics, group := ordersFile(t, c.name, c.block)
			if strings.HasSuffix(c.name, "-eos") {
				exactlyOnce(t, file)
			}
			if err := kafka.Produce(context.Background(), topics[0], devbroker.OrdersFeed(n)); err != nil {
				t.Fatal(err)
			}
			env := []string{"KAFKA_PASSWORD=" + c.password}
			p := runUntilDone(t, file, group, topics[0], env...)
			checkOrders(t, kafka, topics, n)
			if eos := strings.HasSuffix(c.name, "-eos"); eos != strings.Contains(p.Output(), "reading in transactions") {
				t.Errorf("exactly-once %v, but the run's log says otherwise:\n%s", eos, p.Output())
			}
			if c.password == "" {
				return
			}
			if strings.Contains(p.Output(), c.password) {
				t.Errorf("the password is in the logs")
			}
			graph := testproc.Start(t, binary, "graph", env, "graph", file)
			if code := graph.Wait(t, 30*time.Second); code != 0 || !strings.Contains(graph.Output(), "digraph") {
				t.Fatalf("graph: exit %d\n%s", code, graph.Output())
			}
			if strings.Contains(graph.Output(), c.password) {
				t.Errorf("the password is in the graph")
			}
		})
	}
}

// A wrong password, an untrusted CA and a missing client certificate each fail within
// seconds with one line naming the cause, without the secret.
func TestSecurityFailures(t *testing.T) {
	tls := kafka.Real.TLS
	const wrong = "definitely-Wr0ng-password"
	cases := []struct {
		name, block, want string
	}{
		{"wrong PLAIN password", "  brokers: " + kafka.Real.Addr("sasl") + "\n  security:\n    protocol: SASL_PLAINTEXT\n" +
			"    sasl: {mechanism: PLAIN, username: alice, password: ${KAFKA_PASSWORD}}\n", "SASL authentication failed for user alice"},
		{"wrong SCRAM password", "  brokers: " + kafka.Real.Addr("sasl") + "\n  security:\n    protocol: SASL_PLAINTEXT\n" +
			"    sasl: {mechanism: SCRAM-SHA-512, username: carol, password: ${KAFKA_PASSWORD}}\n", "SASL authentication failed for user carol"},
		{"untrusted CA", "  brokers: " + kafka.Real.Addr("ssl") + "\n  security:\n    protocol: SSL\n    tls: {ca_file: " + tls.OtherCA + "}\n",
			"signed by an authority this client does not trust"},
		{"missing client certificate", "  brokers: " + kafka.Real.Addr("mtls") + "\n  security:\n    protocol: SSL\n    tls: {ca_file: " + tls.CA + "}\n",
			"requires a client certificate"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file, _, _ := ordersFile(t, "fail"+string(rune('a'+i)), strings.Replace(c.block, "  brokers:", "  connect_timeout: 5s\n  brokers:", 1))
			began := time.Now()
			p := testproc.Start(t, binary, "run", []string{"KAFKA_PASSWORD=" + wrong}, "run", file)
			code := p.Wait(t, 30*time.Second)
			took := time.Since(began)
			out := strings.TrimSpace(p.Output())
			if code != 1 || strings.Count(out, "\n") != 0 || !strings.HasPrefix(out, "pythia-pipe: ") || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, want 1 and one line with %q; got:\n%s", code, c.want, out)
			}
			if strings.Contains(out, wrong) {
				t.Errorf("the password is in the error")
			}
			if took > 15*time.Second {
				t.Errorf("took %v", took)
			}
			t.Logf("%s: %v: %s", c.name, took.Round(time.Millisecond), out)
		})
	}
}

// The broker is stopped (SIGTERM) mid-run and started again; the pipeline rides through and
// nothing is lost.
func TestBrokerRestart(t *testing.T) {
	const n = 100_000
	b, err := devbroker.StartReal(realkafka.Options{Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	saved := kafka
	kafka = b // ordersFile and checkOrders use this broker
	defer func() { kafka = saved }()
	file, topics, group := ordersFile(t, "restart", "  brokers: "+b.Real.Addr("plaintext")+"\n")
	if err := b.Produce(context.Background(), topics[0], devbroker.OrdersFeed(n)); err != nil {
		t.Fatal(err)
	}
	p := testproc.Start(t, binary, "run", nil, "run", file)
	written := func() int64 {
		var w int64
		for _, topic := range topics[1:] {
			for _, end := range b.EndOffsets(topic) {
				w += end
			}
		}
		return w
	}
	testproc.WaitFor(t, 2*time.Minute, "a fifth of the feed", func() bool { return written() >= n/5 })
	if err := b.Real.Stop(); err != nil {
		t.Fatal(err)
	}
	testproc.WaitFor(t, time.Minute, "pythia-pipe to notice the broker is gone", func() bool {
		out := p.Output()
		return strings.Contains(out, "refuses writes") || strings.Contains(out, "consumer group") || strings.Contains(out, "connection refused")
	})
	if !p.Running() {
		t.Fatalf("pythia-pipe gave up when the broker stopped:\n%s", testproc.LastLines(p.Output(), 20))
	}
	if err := b.Real.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker back after a restart of %v", b.Real.Started.Round(time.Millisecond))
	testproc.WaitFor(t, 5*time.Minute, "the group to commit the end of the feed", func() bool {
		if !p.Running() {
			t.Fatalf("pythia-pipe exited:\n%s", testproc.LastLines(p.Output(), 20))
		}
		return b.CaughtUp(group, topics[0])
	})
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d", code)
	}
	dups := checkOrders(t, b, topics, n)
	t.Logf("broker restarted mid-run: nothing lost, %d duplicates", dups)
	// The feed is keyed by customer: each output keeps the order of each customer's records.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, topic := range topics[1:3] {
		recs, err := b.Read(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		devbroker.ByPartition(recs)
		if inv := devbroker.Inversions(recs, true); inv > 0 {
			t.Errorf("%s: reading the last copy of each record, %d records come after a later one of their key", topic, inv)
		}
		// A write the broker took past a refused one is written again after it: only those
		// may come out of order by their first copy.
		first, again := devbroker.Inversions(recs, false), testproc.LogMax(p.Output(), "rewritten")
		if first > again {
			t.Errorf("%s: %d records first written out of key order, but only %d were written again after", topic, first, again)
		}
		t.Logf("%s: %d records; out of key order by first copy %d (written again after: %d), by last copy 0", topic, len(recs), first, again)
	}
}

// topics create makes the topics with their settings on real Kafka; running it twice changes
// nothing.
func TestTopicsCreate(t *testing.T) {
	env := []string{"KAFKA_BROKERS=" + kafka.Real.Addr("plaintext")}
	first := testproc.Start(t, binary, "topics create", env, "topics", "create", "../../pipelines/clickstream.yaml")
	if code := first.Wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d:\n%s", code, first.Output())
	}
	if strings.Count(first.Output(), ": created") != 4 {
		t.Fatalf("want 4 topics created:\n%s", first.Output())
	}
	if got := kafka.TopicConfig("clicks-pageviews", "retention.ms"); got != "259200000" {
		t.Errorf("clicks-pageviews retention.ms = %q, want 259200000 (72h)", got)
	}
	if got := len(kafka.EndOffsets("clicks-pageviews")); got != 6 {
		t.Errorf("clicks-pageviews has %d partitions, want 6", got)
	}
	second := testproc.Start(t, binary, "topics create again", env, "topics", "create", "../../pipelines/clickstream.yaml")
	if code := second.Wait(t, time.Minute); code != 0 {
		t.Fatalf("second run: exit %d:\n%s", code, second.Output())
	}
	if strings.Contains(second.Output(), "created") || strings.Count(second.Output(), "exists, as configured") != 4 {
		t.Errorf("the second run changed something:\n%s", second.Output())
	}
}

// exactlyOnce adds delivery: exactly_once to the pipeline file at path.
func exactlyOnce(t *testing.T, path string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "\nkafka:", "\ndelivery: exactly_once\nkafka:", 1)
	if text == string(src) {
		t.Fatal("the pipeline has no kafka block")
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
