//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/pythia-pipe/pythia-pipe/internal/registry"
)

// The helpers of the Avro and Protobuf tests: a real Apicurio Registry shared by them, its
// Confluent API through franz-go's sr client (not pythia-pipe's), and records written and
// read back with github.com/twmb/avro directly, so that what pythia-pipe writes is checked by
// another reader than its own codec.

var (
	registryOnce sync.Once
	sharedReg    *registry.Registry
	sharedRegErr error
	// run suffixes the Avro tests' topics, hence their subjects: the registry of `make
	// registry-up` may hold an earlier run's.
	run = strconv.FormatInt(time.Now().Unix()%(1<<30), 36)
)

// sharedRegistry is the registry the Avro tests share, started by the first that asks (the
// one of `make registry-up` when it answers); TestMain stops it.
func sharedRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	registryOnce.Do(func() {
		began := time.Now()
		sharedReg, sharedRegErr = registry.Use(registry.Options{})
		if sharedRegErr == nil {
			fmt.Printf("e2e: Apicurio Registry %s at %s, ready in %v (reused: %v)\n", sharedReg.Version, sharedReg.URL,
				time.Since(began).Round(time.Millisecond), sharedReg.Reused)
		}
	})
	if sharedRegErr != nil {
		t.Fatal(sharedRegErr)
	}
	return sharedReg
}

// closeRegistry stops the shared registry, if one was started.
func closeRegistry() {
	if sharedReg != nil {
		sharedReg.Close()
	}
}

// srClient is a client of the registry at url.
func srClient(t *testing.T, url string) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// register registers a schema under subject and returns its id.
func register(t *testing.T, cl *sr.Client, subject string, s sr.Schema) int {
	t.Helper()
	id, err := cl.RegisterSchema(timeout(t, time.Minute), subject, s, -1, -1)
	if err != nil {
		t.Fatalf("registering under %s: %v", subject, err)
	}
	return id
}

// setBackward gives subject Confluent's default level, BACKWARD (Apicurio's is NONE).
func setBackward(t *testing.T, cl *sr.Client, subject string) {
	t.Helper()
	if r := cl.SetCompatibility(timeout(t, time.Minute), sr.SetCompatibility{Level: sr.CompatBackward}, subject)[0]; r.Err != nil {
		t.Fatalf("PUT /config/%s BACKWARD: %v", subject, r.Err)
	}
}

// versions are the versions registered under subject.
func versions(t *testing.T, cl *sr.Client, subject string) []int {
	t.Helper()
	v, err := cl.SubjectVersions(timeout(t, time.Minute), subject)
	if err != nil {
		t.Fatalf("versions of %s: %v", subject, err)
	}
	return v
}

// schemaText is a schema file of the repository's pipelines/schemas.
func schemaText(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../pipelines/schemas", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// addField is an Avro record schema with one more field, last.
func addField(t *testing.T, schema, field string) string {
	t.Helper()
	i := strings.LastIndex(schema, "]")
	if i < 0 {
		t.Fatalf("no fields in %s", schema)
	}
	return strings.TrimRight(schema[:i], " \n") + ",\n    " + field + "\n  " + schema[i:]
}

// writer writes values with one registered Avro schema, framed with its id.
type writer struct {
	id     int
	schema *avro.Schema
}

func avroWriter(t *testing.T, id int, text string) writer {
	t.Helper()
	s, err := avro.Parse(text)
	if err != nil {
		t.Fatalf("parsing %s: %v", text, err)
	}
	return writer{id: id, schema: s}
}

// frame is v encoded with the writer's schema after the Confluent header of its id.
func (w writer) frame(t *testing.T, v map[string]any) []byte {
	t.Helper()
	h, err := new(sr.ConfluentHeader).AppendEncode(nil, w.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.schema.AppendEncode(h, v)
	if err != nil {
		t.Fatalf("encoding %v: %v", v, err)
	}
	return b
}

// reader reads back Avro bodies framed for the registry: each with the schema the registry
// has under the id the body carries.
type reader struct {
	cl   *sr.Client
	byID map[int]*avro.Schema
}

func newReader(cl *sr.Client) *reader { return &reader{cl: cl, byID: map[int]*avro.Schema{}} }

// read is a body's schema id and its value; an error when it does not read.
func (r *reader) read(ctx context.Context, b []byte) (int, map[string]any, error) {
	id, payload, err := new(sr.ConfluentHeader).DecodeID(b)
	if err != nil {
		return 0, nil, err
	}
	s, ok := r.byID[id]
	if !ok {
		got, err := r.cl.SchemaByID(ctx, id)
		if err != nil {
			return id, nil, fmt.Errorf("schema id %d: %w", id, err)
		}
		if s, err = avro.Parse(got.Schema); err != nil {
			return id, nil, err
		}
		r.byID[id] = s
	}
	var v map[string]any
	rest, err := s.Decode(payload, &v)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes left after the record", len(rest))
	}
	return id, v, err
}

// norm makes values comparable: times as RFC 3339 text in UTC, decimals as their digits,
// ints as int64.
func norm(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = norm(e)
		}
		return out
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case *big.Rat:
		return x.FloatString(2)
	case int:
		return int64(x)
	case int32:
		return int64(x)
	}
	return v
}
