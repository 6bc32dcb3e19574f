package stages_test

import (
	"context"
	"errors"
	"net/http"
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
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

const (
	customerV1 = `{"type":"record","name":"Customer","fields":[{"name":"name","type":"string"},
		{"name":"tier","type":{"type":"enum","name":"Tier","symbols":["bronze","silver","gold"]}}]}`
	customerV2 = `{"type":"record","name":"Customer","fields":[{"name":"name","type":"string"},
		{"name":"tier","type":{"type":"enum","name":"Tier","symbols":["bronze","silver","gold"]}},
		{"name":"since","type":["null","long"],"default":null}]}`
	customerProto = `syntax = "proto3"; package crm; message Customer { string name = 1; string tier = 2; optional int64 since = 3; } message Account { string id = 1; }`
)

// framedTablePipeline is a decode of JSON orders, an enrich from the customers table as
// table, and a map reading the customer's tier; reg is its registry, files are written to its
// folder.
func framedTablePipeline(t *testing.T, reg *srfake.Registry, table string, files map[string]string) *pipeline.Pipeline {
	t.Helper()
	return registryPipeline(t, reg, `{name: d, type: decode, schema: {id: int, customer: "string?"}}
  - {name: cust, type: enrich, table: `+table+`, into: c, on_missing: dlq}
  - {name: m, type: map, set: {gold: msg.c.tier == "gold"}}`, files)
}

func avroCustomer(t *testing.T, id int, schema string, v map[string]any) string {
	t.Helper()
	return string(avroFramed(t, id, schema, v))
}

func protoCustomer(t *testing.T, id int, v map[string]any) string {
	t.Helper()
	f, err := codec.CompileProto(context.Background(), "c.proto", map[string]string{"c.proto": customerProto})
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.Message("Customer")
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Encode(schemareg.Append(nil, id, m.Indexes()), v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A table of Avro or Protobuf values, by the registry's subject or a local schema file: its
// values are read as that schema, the stages after it typed by it; a value the schema cannot
// read leaves its key out, counted.
func TestTableEnrichFramed(t *testing.T) {
	files := map[string]string{"customer.avsc": customerV2, "customer.proto": customerProto}
	cases := []struct {
		name  string
		seed  func(reg *srfake.Registry)
		table string
		value func(t *testing.T) string // c1's value, framed
		want  map[string]any
		typed string // the enrichment's type
	}{
		{"avro, typed by the subject's latest", func(reg *srfake.Registry) {
			reg.SeedSchema("customers-value", 1, 1, sr.Schema{Schema: customerV1})
			reg.SeedSchema("customers-value", 2, 2, sr.Schema{Schema: customerV2})
		}, "{topic: customers, key: msg.customer, format: avro}",
			func(t *testing.T) string {
				return avroCustomer(t, 2, customerV2, map[string]any{"name": "Ada", "tier": "gold", "since": 2019})
			},
			map[string]any{"name": "Ada", "tier": "gold", "since": 2019}, "{name: string, since: int?, tier: string}"},
		{"avro, an older writer read as the schema file's", func(reg *srfake.Registry) {
			reg.SeedSchema("crm-customers", 1, 1, sr.Schema{Schema: customerV1})
		}, "{topic: customers, key: msg.customer, format: avro, schema_file: customer.avsc}",
			func(t *testing.T) string {
				return avroCustomer(t, 1, customerV1, map[string]any{"name": "Ada", "tier": "gold"})
			},
			map[string]any{"name": "Ada", "tier": "gold", "since": nil}, "{name: string, since: int?, tier: string}"},
		{"protobuf, typed by a named subject's message", func(reg *srfake.Registry) {
			reg.SeedSchema("crm-customers", 1, 7, sr.Schema{Schema: customerProto, Type: sr.TypeProtobuf})
		}, "{topic: customers, key: msg.customer, format: protobuf, subject: crm-customers, message: Customer}",
			func(t *testing.T) string {
				return protoCustomer(t, 7, map[string]any{"name": "Ada", "tier": "gold", "since": 2019})
			},
			map[string]any{"name": "Ada", "tier": "gold", "since": 2019}, "{name: string, since: int?, tier: string}"},
		{"protobuf, typed by a local file", func(reg *srfake.Registry) {
			reg.SeedSchema("customers-value", 1, 7, sr.Schema{Schema: customerProto, Type: sr.TypeProtobuf})
		}, "{topic: customers, key: msg.customer, format: protobuf, schema_file: customer.proto, message: crm.Customer}",
			func(t *testing.T) string { return protoCustomer(t, 7, map[string]any{"name": "Ada", "tier": "gold"}) },
			map[string]any{"name": "Ada", "tier": "gold"}, "{name: string, since: int?, tier: string}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := srfake.NewRegistry()
			c.seed(reg)
			p := framedTablePipeline(t, reg, c.table, files)
			if got, _ := p.StageByName("cust").Out.Field("c"); got == nil || got.String() != c.typed {
				t.Errorf("the enrichment is typed %v, want %s", got, c.typed)
			}
			topic := newFakeTopic(2)
			topic.put(0, "c1", c.value(t))
			topic.put(1, "bad", `{"name": "not framed", "tier": "gold"}`)
			openTable(t, p, topic)
			if got := counters(p); got["table_keys"] != 1 || got["table_invalid"] != 1 {
				t.Errorf("after the restore: %v", got)
			}
			outs, err := run(t, p, `{"id": 1, "customer": "c1"}`, "d", "cust", "m")
			if err != nil {
				t.Fatal(err)
			}
			if got := customer(t, outs); !reflect.DeepEqual(got, c.want) {
				t.Errorf("c1 = %#v, want %#v", got, c.want)
			}
			if gold := outs[0].Rec.Msg.(map[string]any)["gold"]; gold != true {
				t.Errorf("gold = %v, want true", gold)
			}
			var me *stages.MissingError
			if _, err := run(t, p, `{"id": 2, "customer": "bad"}`, "d", "cust"); !errors.As(err, &me) {
				t.Errorf("a key whose value is not framed: %v", err)
			}
		})
	}
}

// The table's schema types the stages after it at validate time: from the registry when it
// answers (a warning when it does not), or offline from a schema file.
func TestTableEnrichFramedValidate(t *testing.T) {
	reg := srfake.NewRegistry()
	reg.SeedSchema("customers-value", 1, 1, sr.Schema{Schema: customerV2})
	files := map[string]string{"customer.avsc": customerV2}
	cases := []struct {
		name, table, set string
		want             string // a part of the diagnostics
	}{
		{"a misspelt field, typed by the subject", "{topic: customers, key: msg.customer, format: avro}", "msg.c.teir", "unknown field teir (did you mean tier?)"},
		{"a misspelt field, typed by the schema file", "{topic: customers, key: msg.customer, format: avro, schema_file: customer.avsc}", "msg.c.nmae", "unknown field nmae (did you mean name?)"},
		{"a type mismatch, typed by the subject", "{topic: customers, key: msg.customer, format: avro}", "msg.c.name + 1", "mismatched types string and int"},
		{"the registry does not answer", "{topic: customers, key: msg.customer, format: avro, subject: nowhere}", "msg.c.tier", "the table's values are not type-checked: cannot read the schema of subject nowhere"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "version: 1\nname: t\nregistry: {urls: http://registry.test}\nsource: {type: kafka, topics: [orders]}\nstages:\n" +
				"  - {name: d, type: decode, schema: {id: int, customer: string}}\n" +
				"  - {name: cust, type: enrich, table: " + c.table + ", into: c}\n" +
				"  - {name: m, type: map, set: {x: " + c.set + "}}\n" +
				"sinks: [{name: a, type: kafka, topic: a}]\n"
			p, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{BaseDir: writeFiles(t, files), Env: func(string) (string, bool) { return "", false },
				Registry: schemareg.Options{Transport: schemareg.InProcess(reg.Handler())}})
			said := diags.Err()
			if p != nil {
				said = p.Warnings.Err()
			}
			if said == nil || !strings.Contains(said.Error(), c.want) {
				t.Errorf("diagnostics %v, want one saying %q", said, c.want)
			}
		})
	}
}

// While the registry cannot be reached, the table's restore waits (counted as the registry's
// wait) and leaves out nothing; wrong credentials stop it.
func TestTableEnrichFramedRegistry(t *testing.T) {
	reg := srfake.NewRegistry()
	reg.SeedSchema("customers-value", 1, 1, sr.Schema{Schema: customerV1})
	var answer atomic.Int64 // the status the registry answers schema ids with; 0: the schema
	answer.Store(http.StatusServiceUnavailable)
	p := framedTablePipeline(t, reg, "{topic: customers, key: msg.customer, format: avro}", nil)
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if status := answer.Load(); status != 0 && strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			w.WriteHeader(int(status))
			return true
		}
		return false
	})
	topic := newFakeTopic(1)
	topic.put(0, "c1", avroCustomer(t, 1, customerV1, map[string]any{"name": "Ada", "tier": "gold"}))
	u, _ := stages.TableUserOf(p.StageByName("cust").Impl)
	opened := make(chan error, 1)
	go func() { opened <- u.OpenTable(t.Context(), stages.TableEnv{Dir: t.TempDir(), Topic: topic}) }()
	t.Cleanup(u.Close)
	testproc.WaitFor(t, 10*time.Second, "the restore counted waiting for the registry", func() bool {
		c := counters(p)
		return c["registry_waiting"] == 1 && c["registry_wait_ms"] >= 50 && c["restoring"] == 1
	})
	answer.Store(0)
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	if c := counters(p); c["table_keys"] != 1 || c["table_invalid"] != 0 || c["registry_waiting"] != 0 {
		t.Errorf("after the registry answered: %v", c)
	}

	reg = srfake.NewRegistry()
	reg.SeedSchema("customers-value", 1, 1, sr.Schema{Schema: customerV1})
	p = framedTablePipeline(t, reg, "{topic: customers, key: msg.customer, format: avro}", nil)
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool { w.WriteHeader(http.StatusUnauthorized); return true })
	u, _ = stages.TableUserOf(p.StageByName("cust").Impl)
	err := u.OpenTable(t.Context(), stages.TableEnv{Dir: t.TempDir(), Topic: topic})
	defer u.Close()
	var se *stages.TableSchemaError
	if !errors.As(err, &se) || se.Topic != "customers" || failure.Judge(failure.Process, "stage cust", "", err).Outcome != failure.Stop {
		t.Fatalf("wrong credentials: %v, want a TableSchemaError judged a stop", err)
	}
	if _, err := run(t, p, `{"id": 1, "customer": "c1"}`, "d", "cust"); !errors.As(err, &se) {
		t.Errorf("a lookup after the table stopped: %v", err)
	}
}

// A table whose format or schema changes while its store is kept is read anew from the
// topic's start: what the old one kept, the new one may not read, and what it left out the
// new one may. A JSON value kept, then the table read as Avro: the value is left out (not
// framed), so its key is missing (on_missing: dlq) rather than its lookups failing on a value
// they cannot read; then back to JSON, with a
// schema it does not match: left out again; a stop and start with the same table reads on.
func TestTableEnrichRereadWhenFormatChanges(t *testing.T) {
	reg := srfake.NewRegistry()
	reg.SeedSchema("customers-value", 1, 1, sr.Schema{Schema: customerV1})
	topic := newFakeTopic(1)
	topic.put(0, "c1", `{"name": "Ada", "tier": "gold"}`)
	dir := t.TempDir()
	for _, c := range []struct {
		name, table   string
		keys, invalid int64
	}{
		{"json", "{topic: customers, key: msg.customer}", 1, 0},
		{"json again: read on", "{topic: customers, key: msg.customer}", 1, 0},
		{"avro: read anew", "{topic: customers, key: msg.customer, format: avro}", 0, 1},
		{"json with a schema it misses: read anew", "{topic: customers, key: msg.customer, schema: {name: int, tier: string}}", 0, 1},
	} {
		p := framedTablePipeline(t, reg, c.table, nil)
		u, _ := stages.TableUserOf(p.StageByName("cust").Impl)
		if err := u.OpenTable(t.Context(), stages.TableEnv{Dir: dir, Topic: topic}); err != nil {
			t.Fatal(err)
		}
		_, err := run(t, p, `{"id": 1, "customer": "c1"}`, "d", "cust")
		got := counters(p)
		u.Close()
		var ve *stages.TableValueError
		if missing := err != nil && strings.Contains(err.Error(), `no key "c1"`); (c.keys == 0) != missing || errors.As(err, &ve) {
			t.Errorf("%s: lookup: %v", c.name, err)
		}
		if got["table_keys"] != c.keys || got["table_invalid"] != c.invalid || (c.name == "json again: read on") != (got["restored"] == 0) {
			t.Errorf("%s: %d keys, %d invalid, %d restored; want %d keys, %d invalid, restored only when read anew",
				c.name, got["table_keys"], got["table_invalid"], got["restored"], c.keys, c.invalid)
		}
	}
}
