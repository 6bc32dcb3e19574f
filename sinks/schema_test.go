package sinks_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/pythia-pipe/pythia-pipe/codec"
	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

const (
	orderAvsc  = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"cents","type":"long"}]}`
	orderProto = `syntax = "proto3"; package shop; message Refund { string id = 1; } message Order { string id = 1; int64 cents = 2; }`
)

// schemaSink builds a pipeline decoding JSON into {id, cents} and writing it with sink, its
// registry reg in process; it returns the sink and the pipeline's diagnostics.
func schemaSink(t *testing.T, reg *srfake.Registry, sink string) (sinks.Renderer, *pipeline.Pipeline) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range map[string]string{"order.avsc": orderAvsc, "order.proto": orderProto} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := "version: 1\nname: t\nregistry: {urls: http://registry.test}\nsource: {type: kafka, topics: [orders]}\n" +
		"stages: [{name: parse, type: decode, schema: {id: string, cents: int}}]\nsinks:\n  - " + sink + "\n"
	p, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{BaseDir: dir, Env: func(string) (string, bool) { return "", false },
		Registry: schemareg.Options{Transport: schemareg.InProcess(reg.Handler())}})
	if len(diags) > 0 {
		t.Fatalf("invalid test pipeline:\n%v", diags.Err())
	}
	return p.Sinks[0].Impl.(sinks.Renderer), p
}

func decoded(msg map[string]any) *record.Record {
	return &record.Record{Topic: "orders", Value: []byte("{}"), Msg: msg, Decoded: true}
}

func TestEncodeWithASchema(t *testing.T) {
	cases := []struct {
		name   string
		sink   string
		seed   func(reg *srfake.Registry)
		id     int
		format string // the codec to read back with
	}{
		{"avro, the subject's latest", "{name: out, type: kafka, topic: orders-out, encode: avro}",
			func(reg *srfake.Registry) {
				reg.SeedSchema("orders-out-value", 1, 4, sr.Schema{Schema: `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`})
				reg.SeedSchema("orders-out-value", 2, 5, sr.Schema{Schema: orderAvsc})
			}, 5, "avro"},
		{"avro, a pinned version", "{name: out, type: kafka, topic: orders-out, encode: avro, subject: orders-v, schema_version: 1}",
			func(reg *srfake.Registry) {
				reg.SeedSchema("orders-v", 1, 7, sr.Schema{Schema: orderAvsc})
				reg.SeedSchema("orders-v", 2, 8, sr.Schema{Schema: `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`})
			}, 7, "avro"},
		{"avro, a local file found under its subject", "{name: out, type: kafka, topic: orders-out, encode: avro, schema_file: order.avsc}",
			func(reg *srfake.Registry) { reg.SeedSchema("orders-out-value", 1, 9, sr.Schema{Schema: orderAvsc}) }, 9, "avro"},
		{"avro, a local file registered", "{name: out, type: kafka, topic: orders-out, encode: avro, schema_file: order.avsc, auto_register: true}",
			func(*srfake.Registry) {}, 1, "avro"},
		{"protobuf, a named message", "{name: out, type: kafka, topic: orders-out, encode: protobuf, message: Order}",
			func(reg *srfake.Registry) {
				reg.SeedSchema("orders-out-value", 1, 3, sr.Schema{Schema: orderProto, Type: sr.TypeProtobuf})
			}, 3, "protobuf"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := srfake.NewRegistry()
			c.seed(reg)
			r, _ := schemaSink(t, reg, c.sink)
			msg := map[string]any{"id": "o1", "cents": 1250}
			w, err := r.Render(decoded(msg))
			if err != nil {
				t.Fatal(err)
			}
			id, payload, err := schemareg.Split(w.Value)
			if err != nil || id != c.id {
				t.Fatalf("framed for id %d (%v), want %d", id, err, c.id)
			}
			var back any
			if c.format == "avro" {
				a, _ := codec.ParseAvro(orderAvsc)
				back, err = a.Decode(payload)
			} else {
				idx, rest, _ := schemareg.SplitIndexes(payload)
				f, _ := codec.CompileProto(context.Background(), "o.proto", map[string]string{"o.proto": orderProto})
				m, _ := f.ByIndexes(idx)
				if m.Name() != "shop.Order" {
					t.Errorf("indexes %v name %s", idx, m.Name())
				}
				back, err = m.Decode(rest)
			}
			if err != nil || !reflect.DeepEqual(back, msg) {
				t.Errorf("read back %v (%v), want %v", back, err, msg)
			}
			// A tombstone stays a tombstone.
			if w, err := r.Render(&record.Record{Decoded: true}); err != nil || w.Value != nil {
				t.Errorf("a tombstone is written as %q, %v", w.Value, err)
			}
		})
	}
}

// What goes wrong is judged by the failure table: a record that does not fit is its own fault
// (its field named), a registry that does not answer waits, a subject that is not there stops.
func TestEncodeFailures(t *testing.T) {
	cases := []struct {
		name      string
		sink      string
		seed      func(reg *srfake.Registry)
		msg       map[string]any
		outcome   failure.Outcome
		says      string
		intercept func(w http.ResponseWriter, r *http.Request) bool
	}{
		{"a value of the wrong type", "{name: out, type: kafka, topic: orders-out, encode: avro}",
			func(reg *srfake.Registry) { reg.SeedSchema("orders-out-value", 1, 1, sr.Schema{Schema: orderAvsc}) },
			map[string]any{"id": "o1", "cents": "12.50"}, failure.DeadLetter, "field cents: cannot use string", nil},
		{"a field the schema lacks", "{name: out, type: kafka, topic: orders-out, encode: avro}",
			func(reg *srfake.Registry) { reg.SeedSchema("orders-out-value", 1, 1, sr.Schema{Schema: orderAvsc}) },
			map[string]any{"id": "o1", "cents": 1, "region": "EU"}, failure.DeadLetter, "field region: not a field of record Order", nil},
		{"no subject", "{name: out, type: kafka, topic: orders-out, encode: avro}", func(*srfake.Registry) {},
			map[string]any{"id": "o1", "cents": 1}, failure.Stop, "subject orders-out-value (latest version)", nil},
		{"a local file not registered", "{name: out, type: kafka, topic: orders-out, encode: avro, schema_file: order.avsc}", func(*srfake.Registry) {},
			map[string]any{"id": "o1", "cents": 1}, failure.Stop, "set auto_register: true", nil},
		{"a subject of another format", "{name: out, type: kafka, topic: orders-out, encode: protobuf}",
			func(reg *srfake.Registry) { reg.SeedSchema("orders-out-value", 1, 1, sr.Schema{Schema: orderAvsc}) },
			map[string]any{"id": "o1", "cents": 1}, failure.Stop, "is avro, not protobuf", nil},
		{"the registry down", "{name: out, type: kafka, topic: orders-out, encode: avro}",
			func(reg *srfake.Registry) { reg.SeedSchema("orders-out-value", 1, 1, sr.Schema{Schema: orderAvsc}) },
			map[string]any{"id": "o1", "cents": 1}, failure.Wait, "HTTP 503",
			func(w http.ResponseWriter, r *http.Request) bool {
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := srfake.NewRegistry()
			c.seed(reg)
			r, _ := schemaSink(t, reg, c.sink)
			if c.intercept != nil {
				reg.Intercept(c.intercept)
			}
			_, err := r.Render(decoded(c.msg))
			if err == nil {
				t.Fatal("no error")
			}
			f := failure.Judge(failure.Produce, "sink out", "orders-out", err)
			if f.Outcome != c.outcome || !strings.Contains(f.Error(), c.says) {
				t.Errorf("%v: judged %v, want %v saying %q", f, f.Outcome, c.outcome, c.says)
			}
			var se *sinks.SchemaSetupError
			if c.outcome == failure.Stop && !errors.As(err, &se) && !strings.Contains(err.Error(), "schema registry") {
				t.Errorf("%T is neither a setup error nor the registry's", err)
			}
		})
	}
}
