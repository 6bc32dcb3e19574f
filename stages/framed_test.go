package stages_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/pythia-pipe/pythia-pipe/codec"
	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

const (
	orderV1 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"}]}`
	orderV2 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"},
		{"name":"note","type":["null","string"],"default":null}]}`
	orderProto = `syntax = "proto3"; package shop; message Order { string id = 1; double amount = 2; } message Refund { string id = 1; int64 cents = 2; }`
)

// registryPipeline builds a one-decode pipeline whose registry is reg, in process; files are
// written to its folder first.
func registryPipeline(t *testing.T, reg *srfake.Registry, decode string, files map[string]string) *pipeline.Pipeline {
	t.Helper()
	dir := writeFiles(t, files)
	src := "version: 1\nname: t\nregistry: {urls: http://registry.test}\nsource: {type: kafka, topics: [orders]}\nstages:\n  - " + decode +
		"\nsinks: [{name: a, type: kafka, topic: a}]\n"
	p, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{BaseDir: dir, Env: func(string) (string, bool) { return "", false },
		Registry: schemareg.Options{Transport: schemareg.InProcess(reg.Handler())}})
	if len(diags) > 0 {
		t.Fatalf("invalid test pipeline:\n%v", diags.Err())
	}
	return p
}

// writeFiles writes files, by name, to a folder of the test's, and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func avroFramed(t *testing.T, id int, schema string, v any) []byte {
	t.Helper()
	a, err := codec.ParseAvro(schema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.Encode(schemareg.Append(nil, id, nil), v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func protoFramed(t *testing.T, id int, message string, v any) []byte {
	t.Helper()
	f, err := codec.CompileProto(context.Background(), "o.proto", map[string]string{"o.proto": orderProto})
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.Message(message)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Encode(schemareg.Append(nil, id, m.Indexes()), v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeOne(t *testing.T, p *pipeline.Pipeline, value []byte) (any, error) {
	t.Helper()
	outs, err := p.StageByName("parse").Impl.Process(context.Background(), &record.Record{Value: value, Topic: "orders"}, nil)
	if err != nil {
		return nil, err
	}
	return outs[0].Rec.Msg, nil
}

func TestDecodeFramed(t *testing.T) {
	reg := srfake.NewRegistry()
	reg.SeedSchema("orders-value", 1, 1, sr.Schema{Schema: orderV1})
	reg.SeedSchema("orders-value", 2, 2, sr.Schema{Schema: orderV2})
	reg.SeedSchema("protos-value", 1, 3, sr.Schema{Schema: orderProto, Type: sr.TypeProtobuf})
	files := map[string]string{"order.avsc": orderV2, "order.proto": orderProto}
	cases := []struct {
		name   string
		decode string
		value  []byte
		want   any
		fault  string // a part of the error; "" for none
		out    string // the schema the stage emits
	}{
		{"avro, typed by the subject's latest", "{name: parse, type: decode, format: avro}",
			avroFramed(t, 2, orderV2, map[string]any{"id": "o1", "amount": 1.5, "note": "n"}),
			map[string]any{"id": "o1", "amount": 1.5, "note": "n"}, "", "{amount: float, id: string, note: string?}"},
		{"avro, an older writer read as the file's schema", "{name: parse, type: decode, format: avro, schema_file: order.avsc}",
			avroFramed(t, 1, orderV1, map[string]any{"id": "o1", "amount": 2.0}),
			map[string]any{"id": "o1", "amount": 2.0, "note": nil}, "", "{amount: float, id: string, note: string?}"},
		{"avro, an unknown schema id", "{name: parse, type: decode, format: avro, subject: orders-value}",
			avroFramed(t, 99, orderV1, map[string]any{"id": "o1", "amount": 2.0}), nil, "schema id 99", ""},
		{"avro, a body not framed", "{name: parse, type: decode, format: avro}", []byte(`{"id":"o1"}`), nil, "magic byte 0", ""},
		{"avro, an id that names a Protobuf schema", "{name: parse, type: decode, format: avro}",
			protoFramed(t, 3, "Order", map[string]any{"id": "o1"}), nil, "the registry's schema is protobuf, not avro", ""},
		{"avro, bytes that do not decode", "{name: parse, type: decode, format: avro}", append(schemareg.Append(nil, 1, nil), 0x7f), nil, "decode avro", ""},
		{"protobuf, the message the indexes name", "{name: parse, type: decode, format: protobuf, subject: protos-value, message: Refund}",
			protoFramed(t, 3, "Refund", map[string]any{"id": "r1", "cents": 250}), map[string]any{"id": "r1", "cents": 250}, "", "{cents: int, id: string}"},
		{"protobuf, typed by a local file", "{name: parse, type: decode, format: protobuf, schema_file: order.proto, message: shop.Order}",
			protoFramed(t, 3, "Order", map[string]any{"id": "o1", "amount": 3.5}), map[string]any{"id": "o1", "amount": 3.5}, "", "{amount: float, id: string}"},
		{"protobuf, indexes naming no message", "{name: parse, type: decode, format: protobuf, subject: protos-value, message: Order}",
			append(schemareg.Append(nil, 3, []int{5}), 0), nil, "name no message", ""},
		{"protobuf, another message than the stage's", "{name: parse, type: decode, format: protobuf, schema_file: order.proto, message: Order}",
			protoFramed(t, 3, "Refund", map[string]any{"id": "r1"}), nil, "the record holds a shop.Refund, the stage reads shop.Order", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := registryPipeline(t, reg, c.decode, files)
			if c.out != "" {
				if got := p.StageByName("parse").Out.String(); got != c.out {
					t.Errorf("emits %s, want %s", got, c.out)
				}
			}
			got, err := decodeOne(t, p, c.value)
			if c.fault != "" {
				if err == nil || !strings.Contains(err.Error(), c.fault) {
					t.Fatalf("err = %v, want one saying %q", err, c.fault)
				}
				if o := failure.Judge(failure.Process, "stage parse", "", err).Outcome; o != failure.DeadLetter {
					t.Errorf("judged %v, want dead-letter", o)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("msg = %#v, want %#v", got, c.want)
			}
		})
	}
}

// A registry that cannot answer holds the record (no error, so no DLQ) until it answers.
func TestDecodeWaitsForTheRegistry(t *testing.T) {
	reg := srfake.NewRegistry()
	reg.SeedSchema("orders-value", 1, 1, sr.Schema{Schema: orderV1})
	p := registryPipeline(t, reg, "{name: parse, type: decode, format: avro, subject: orders-value}", nil)
	var refused atomic.Int64
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") && refused.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	got, err := decodeOne(t, p, avroFramed(t, 1, orderV1, map[string]any{"id": "o1", "amount": 1.0}))
	if err != nil {
		t.Fatalf("err = %v, want the record decoded once the registry answers", err)
	}
	if refused.Load() != 4 || got.(map[string]any)["id"] != "o1" {
		t.Errorf("%d calls, msg %v", refused.Load(), got)
	}
	// A stop ends the wait, without blaming the record.
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool { w.WriteHeader(http.StatusBadGateway); return true })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = p.StageByName("parse").Impl.Process(ctx, &record.Record{Value: avroFramed(t, 5, orderV1, map[string]any{"id": "o", "amount": 1.0})}, nil)
	if err == nil || ctx.Err() == nil {
		t.Fatalf("err = %v before the stop", err)
	}
}

// While the registry cannot answer, the stage counts the record waiting and how long it has
// waited; once it answers, neither.
func TestDecodeCountsItsRegistryWait(t *testing.T) {
	reg := srfake.NewRegistry()
	reg.SeedSchema("orders-value", 1, 1, sr.Schema{Schema: orderV1})
	p := registryPipeline(t, reg, "{name: parse, type: decode, format: avro, subject: orders-value}", nil)
	var up atomic.Bool
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") && !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	counters := p.StageByName("parse").Impl.(stages.Counting).Counters
	if c := counters(); c["registry_waiting"] != 0 || c["registry_wait_ms"] != 0 {
		t.Fatalf("counters %v before any record", c)
	}
	done := make(chan error, 1)
	go func() {
		_, err := decodeOne(t, p, avroFramed(t, 1, orderV1, map[string]any{"id": "o1", "amount": 1.0}))
		done <- err
	}()
	testproc.WaitFor(t, 10*time.Second, "the record counted waiting for a while", func() bool {
		c := counters()
		return c["registry_waiting"] == 1 && c["registry_wait_ms"] >= 50
	})
	up.Store(true)
	if err := <-done; err != nil {
		t.Fatalf("err = %v once the registry answers", err)
	}
	if c := counters(); c["registry_waiting"] != 0 || c["registry_wait_ms"] != 0 {
		t.Errorf("counters %v once the registry answered", c)
	}
}

func TestDecodeStopsOnWrongCredentials(t *testing.T) {
	reg := srfake.NewRegistry()
	reg.SeedSchema("orders-value", 1, 1, sr.Schema{Schema: orderV1})
	p := registryPipeline(t, reg, "{name: parse, type: decode, format: avro, subject: orders-value}", nil)
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool { w.WriteHeader(http.StatusUnauthorized); return true })
	_, err := decodeOne(t, p, avroFramed(t, 1, orderV1, map[string]any{"id": "o1", "amount": 1.0}))
	if o := failure.Judge(failure.Process, "stage parse", "", err).Outcome; o != failure.Stop {
		t.Errorf("err %v judged %v, want stop", err, o)
	}
}
