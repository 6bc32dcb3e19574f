//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/registry"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// Pipelines of the Avro and Protobuf tests: their files, runs, feeds and the checks of what
// they wrote.

// exampleFile is pipelines/orders-avro.yaml with its topics and group suffixed by name and
// the run, its schema files where they are, and commits every 200ms; its topics are made.
func exampleFile(t *testing.T, name string) (path string, topics [3]string, group string) {
	t.Helper()
	src, err := os.ReadFile("../../pipelines/orders-avro.yaml")
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := filepath.Abs("../../pipelines/schemas")
	if err != nil {
		t.Fatal(err)
	}
	base := "avro-" + name + "-" + run
	topics, group = [3]string{base, base + "-out", base + "-dlq"}, base
	text := string(src)
	for old, new := range map[string]string{
		"topics: [orders-avro]": "topics: [" + topics[0] + "]", "topic: orders-avro-out": "topic: " + topics[1],
		"topic: orders-avro-dlq":                "topic: " + topics[2],
		"group: order-avro-processors":          "group: " + group + "\n  commit_interval: 200ms\n  drain_timeout: 10s",
		"schema_file: schemas/order.avsc":       "schema_file: " + schemas + "/order.avsc",
		"schema_file: schemas/order-total.avsc": "schema_file: " + schemas + "/order-total.avsc",
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("orders-avro.yaml changed: %q not found", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	path = filepath.Join(t.TempDir(), "orders-avro.yaml")
	writePipeline(t, path, text, topics[:]...)
	return path, topics, group
}

// pipeFile writes a pipeline file of stages and sinks (body, with the topics and group it is
// given: @IN@, @OUT@, @DLQ@, @GROUP@, and @DIR@, the folder of the files passed) reading
// avro-NAME-RUN or in, and creates its topics.
func pipeFile(t *testing.T, name, in, body string, files map[string]string) (path string, topics [3]string, group string) {
	t.Helper()
	dir := t.TempDir()
	for file, text := range files {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := "avro-" + name + "-" + run
	topics, group = [3]string{base, base + "-out", base + "-dlq"}, base
	if in != "" {
		topics[0] = in
	}
	text := "version: 1\nname: " + name + "\nkafka:\n  brokers: ${KAFKA_BROKERS}\nregistry:\n  urls: ${SCHEMA_REGISTRY_URL}\n" +
		"source:\n  type: kafka\n  topics: [@IN@]\n  group: @GROUP@\n  start: earliest\n  commit_interval: 200ms\n  drain_timeout: 10s\n" +
		body + "dlq:\n  type: kafka\n  topic: @DLQ@\n"
	text = strings.NewReplacer("@IN@", topics[0], "@OUT@", topics[1], "@DLQ@", topics[2], "@GROUP@", group, "@DIR@", dir).Replace(text)
	path = filepath.Join(dir, name+".yaml")
	writePipeline(t, path, text, topics[:]...)
	return path, topics, group
}

// runEnv is the environment of a pipeline file of pipeFile on the shared broker and reg.
func runEnv(reg *registry.Registry) []string {
	return []string{"KAFKA_BROKERS=" + kafka.Real.Addr("plaintext"), "SCHEMA_REGISTRY_URL=" + reg.URL}
}

// startPipe runs a pipeline file of pipeFile with reg (debug logs, so that every line a
// record can cause is written).
func startPipe(t *testing.T, file string, reg *registry.Registry, args ...string) *testproc.Proc {
	t.Helper()
	return testproc.Start(t, binary, filepath.Base(file), runEnv(reg), append([]string{"run", file, "--log-level", "debug"}, args...)...)
}

// waitCaughtUp waits until group has committed the end of topic, p running all along.
func waitCaughtUp(t *testing.T, p *testproc.Proc, group, topic string) {
	t.Helper()
	testproc.WaitFor(t, 3*time.Minute, group+" to commit the end of "+topic, func() bool {
		if !p.Running() {
			t.Fatalf("%s exited early:\n%s", p.Name, testproc.LastLines(p.Output(), 20))
		}
		return kafka.CaughtUp(group, topic)
	})
}

// stopPipe stops p with SIGTERM and expects exit 0.
func stopPipe(t *testing.T, p *testproc.Proc) {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, time.Minute); code != 0 {
		t.Fatalf("%s: exit %d after SIGTERM", p.Name, code)
	}
}

// Orders as pipelines/schemas/order.avsc has them, by index: a tenth of amount 0 (filtered
// out by orders-avro), a tenth big (1000 and more), notes on three in four.
var regions = []string{"EU", "US", "APAC"}

func customer(i int) string { return "c" + strconv.Itoa(i%97) }

func orderIn(i int) map[string]any {
	amount := fmt.Sprintf("%d.%02d", 1+i%999, i%100)
	switch i % 10 {
	case 1:
		amount = "0.00"
	case 2:
		amount = fmt.Sprintf("%d.%02d", 1000+i%5000, i%100)
	}
	v := map[string]any{"order_id": "o" + strconv.Itoa(i), "customer_id": customer(i), "amount": amount,
		"region": regions[i%3], "placed_at": time.UnixMilli(1_700_000_000_000 + int64(i)*1000).UTC(), "note": nil}
	if i%4 != 0 {
		v["note"] = "n" + strconv.Itoa(i)
	}
	return v
}

// orderTotal is order i as orders-avro writes it (pipelines/schemas/order-total.avsc); false
// when it is filtered out.
func orderTotal(i int) (map[string]any, bool) {
	in := orderIn(i)
	whole, frac, _ := strings.Cut(in["amount"].(string), ".")
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	cents := w*100 + f
	if cents <= 0 {
		return nil, false
	}
	return map[string]any{"order_id": in["order_id"], "customer_id": in["customer_id"], "region": in["region"],
		"placed_at": in["placed_at"], "total_cents": cents, "big": cents >= 100_000}, true
}

// framedOrders are orders from..to-1 written by w, keyed by customer, with a seq header.
func framedOrders(t *testing.T, w writer, from, to int, value func(int) map[string]any) []devbroker.Record {
	t.Helper()
	recs := make([]devbroker.Record, 0, to-from)
	for i := from; i < to; i++ {
		recs = append(recs, devbroker.Record{Key: []byte(customer(i)), Value: w.frame(t, value(i)),
			Headers: map[string]string{"seq": strconv.Itoa(i)}, Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i))})
	}
	return recs
}

// bodyReader reads back a body framed for the registry: its schema id and its value, read
// with the schema the registry has under that id.
type bodyReader interface {
	read(ctx context.Context, b []byte) (id int, v map[string]any, err error)
}

// checkOut reads topic and checks that it holds exactly want, by order_id: each record
// framed with schema id wantID, keyed by its customer_id, read back with the registry's
// schema to the values wanted; none missing, none twice.
func checkOut(t *testing.T, topic string, rd bodyReader, wantID int, want map[string]map[string]any) {
	t.Helper()
	ctx := timeout(t, 2*time.Minute)
	recs, err := kafka.Read(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	seen, bad := map[string]bool{}, 0
	fail := func(format string, args ...any) {
		if bad++; bad <= 5 {
			t.Errorf(topic+": "+format, args...)
		}
	}
	for _, r := range recs {
		id, v, err := rd.read(ctx, r.Value)
		if err != nil {
			fail("%s/%d@%d does not read: %v", topic, r.Partition, r.Offset, err)
			continue
		}
		orderID, _ := v["order_id"].(string)
		w, ok := want[orderID]
		switch {
		case id != wantID:
			fail("%s is framed with schema id %d, want %d", orderID, id, wantID)
		case !ok:
			fail("%s should not be here: %v", orderID, v)
		case seen[orderID]:
			fail("%s is there twice", orderID)
		case string(r.Key) != w["customer_id"]:
			fail("%s has key %q, want %q", orderID, r.Key, w["customer_id"])
		case !reflect.DeepEqual(norm(v), norm(w)):
			fail("%s is\n  %v\nwant\n  %v", orderID, norm(v), norm(w))
		}
		seen[orderID] = true
	}
	if len(seen) != len(want) || bad > 0 {
		t.Fatalf("%s: %d records, %d of the %d wanted, %d wrong", topic, len(recs), len(seen), len(want), bad)
	}
}

// checkDLQ checks that topic holds exactly the records of want (values by their seq header),
// each as it came, dead-lettered by stage with a reason holding each of reasons; it returns
// one reason, for the log.
func checkDLQ(t *testing.T, topic string, want map[string][]byte, stage string, reasons ...string) string {
	t.Helper()
	recs, err := kafka.Read(timeout(t, 2*time.Minute), topic)
	if err != nil {
		t.Fatal(err)
	}
	seen, example := map[string]bool{}, ""
	for _, r := range recs {
		seq, reason := r.Headers["seq"], r.Headers["pythia.error"]
		w, ok := want[seq]
		switch {
		case !ok:
			t.Fatalf("%s: record seq %q should not be here (%s: %s)", topic, seq, r.Headers["pythia.stage"], reason)
		case seen[seq]:
			t.Fatalf("%s: record seq %s is there twice", topic, seq)
		case string(r.Value) != string(w):
			t.Fatalf("%s: record seq %s is not as it came: %q, want %q", topic, seq, r.Value, w)
		case r.Headers["pythia.stage"] != stage:
			t.Fatalf("%s: record seq %s dead-lettered by %q, want %q", topic, seq, r.Headers["pythia.stage"], stage)
		}
		for _, s := range reasons {
			if !strings.Contains(reason, s) {
				t.Fatalf("%s: record seq %s: the reason %q does not say %q", topic, seq, reason, s)
			}
		}
		seen[seq], example = true, reason
	}
	if len(seen) != len(want) {
		t.Fatalf("%s: %d records dead-lettered, want %d", topic, len(seen), len(want))
	}
	return example
}

// written is how many records topic holds.
func written(topic string) int64 {
	var n int64
	for _, end := range kafka.EndOffsets(topic) {
		n += end
	}
	return n
}

// freeAddr is a free address on 127.0.0.1 (for a metrics server).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// metric is the value of the metric name whose labels include label, as served at addr;
// false when it is not there (yet).
func metric(addr, name, label string) (float64, bool) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, label) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return v, err == nil
		}
	}
	return 0, false
}
