//go:build e2e

package registry

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

const (
	orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[` +
		`{"name":"order_id","type":"string"},{"name":"amount","type":"double"}]}`
	// v2 adds a field with a default: a reader of v2 reads v1's records (BACKWARD).
	orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[` +
		`{"name":"order_id","type":"string"},{"name":"amount","type":"double"},` +
		`{"name":"region","type":"string","default":"EU"}]}`
	// v3 adds a field without a default: a reader of v3 cannot read v2's records.
	orderV3 = `{"type":"record","name":"Order","namespace":"shop","fields":[` +
		`{"name":"order_id","type":"string"},{"name":"amount","type":"double"},` +
		`{"name":"region","type":"string","default":"EU"},{"name":"customer_id","type":"string"}]}`

	orderProto = "syntax = \"proto3\";\npackage shop;\n\nmessage Order {\n  string order_id = 1;\n  double amount = 2;\n}\n"
	batchProto = "syntax = \"proto3\";\npackage shop;\n\nimport \"shop/order.proto\";\n\n" +
		"message Batch {\n  repeated Order orders = 1;\n}\n"
)

// The registry answers franz-go's sr client on its Confluent API: Avro schemas registered,
// fetched by id, evolved under BACKWARD (a compatible version taken, an incompatible one
// refused with 409), Protobuf schemas with a reference, unknown ids and subjects as 404s
// with Confluent's error codes, subjects deleted. Where Apicurio answers otherwise than
// Confluent's registry does, the test says so in its log.
func TestConfluentAPI(t *testing.T) {
	began := time.Now()
	r, err := Use(Options{Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Reused {
		t.Logf("reusing the registry of make registry-up at %s", r.URL)
	} else {
		t.Logf("Apicurio Registry %s on Java %d at %s: ready in %v after launch, %v in all (fetch included); RSS %s",
			r.Version, r.Java.Major, r.URL, r.Started.Round(time.Millisecond), time.Since(began).Round(time.Millisecond), rss(r.PID()))
	}
	cl, err := sr.NewClient(sr.URLs(r.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Subjects of this run's own: a reused registry may hold others.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	orders, shop, batches := "smoke-orders-"+run+"-value", "smoke-shop-"+run+"-value", "smoke-batches-"+run+"-value"

	global := cl.Compatibility(ctx)[0]
	if global.Err != nil {
		t.Fatalf("GET /config: %v", global.Err)
	}
	t.Logf("global compatibility: %v (Confluent's default is BACKWARD; Apicurio has no global rule unless one is set)", global.Level)
	if !r.Reused && global.Level != sr.CompatNone {
		t.Errorf("a fresh Apicurio reports global compatibility %v, want NONE", global.Level)
	}

	// Avro: register, fetch by id.
	id1, err := cl.RegisterSchema(ctx, orders, sr.Schema{Schema: orderV1}, -1, -1)
	if err != nil {
		t.Fatalf("registering v1: %v", err)
	}
	s, err := cl.SchemaByID(ctx, id1)
	if err != nil {
		t.Fatalf("GET /schemas/ids/%d: %v", id1, err)
	}
	if s.Schema != orderV1 || s.Type != sr.TypeAvro {
		t.Fatalf("schema %d is %v %s, want AVRO %s", id1, s.Type, s.Schema, orderV1)
	}
	t.Logf("v1 registered under %s as id %d; fetched by id, as written", orders, id1)
	if again, err := cl.RegisterSchema(ctx, orders, sr.Schema{Schema: orderV1}, -1, -1); err != nil || again != id1 {
		t.Fatalf("registering v1 again: id %d, %v; want %d", again, err, id1)
	}

	// A subject without a level of its own: Confluent answers 404 (40408) unless asked
	// defaultToGlobal; Apicurio answers the global level.
	own := cl.Compatibility(ctx, orders)[0]
	var re *sr.ResponseError
	switch {
	case own.Err == nil:
		t.Logf("GET /config/%s before any is set: 200, %v (the global level; Confluent answers 404, error 40408)", orders, own.Level)
	case errors.As(own.Err, &re):
		t.Logf("GET /config/%s before any is set: %d, error %d: %s", orders, re.StatusCode, re.ErrorCode, re.Message)
	default:
		t.Fatalf("GET /config/%s: %v", orders, own.Err)
	}

	set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, orders)[0]
	if set.Err != nil || set.Level != sr.CompatBackward {
		t.Fatalf("PUT /config/%s BACKWARD: %v, %v", orders, set.Level, set.Err)
	}
	if got := cl.Compatibility(ctx, orders)[0]; got.Err != nil || got.Level != sr.CompatBackward {
		t.Fatalf("GET /config/%s after PUT: %v, %v", orders, got.Level, got.Err)
	}

	// A compatible new version: a field with a default.
	check, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), orders, -1, sr.Schema{Schema: orderV2})
	if err != nil || !check.Is {
		t.Fatalf("v2 against the latest: %+v, %v; want compatible", check, err)
	}
	id2, err := cl.RegisterSchema(ctx, orders, sr.Schema{Schema: orderV2}, -1, -1)
	if err != nil {
		t.Fatalf("registering v2 under BACKWARD: %v", err)
	}
	latest, err := cl.SchemaByVersion(ctx, orders, -1)
	if err != nil || latest.ID != id2 || latest.Version != 2 || latest.Schema.Schema != orderV2 || latest.Subject != orders {
		t.Fatalf("latest of %s: %+v, %v; want version 2, id %d", orders, latest, err, id2)
	}
	t.Logf("v2 (a field with a default) registered as id %d, version 2", id2)

	// An incompatible one: a field without a default.
	check, err = cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), orders, -1, sr.Schema{Schema: orderV3})
	if err != nil || check.Is {
		t.Fatalf("v3 against the latest: %+v, %v; want incompatible", check, err)
	}
	t.Logf("POST /compatibility/subjects/%s/versions/latest?verbose=true for v3: is_compatible false, messages %q", orders, check.Messages)
	_, err = cl.RegisterSchema(ctx, orders, sr.Schema{Schema: orderV3}, -1, -1)
	if !errors.As(err, &re) || re.StatusCode != 409 || re.ErrorCode != 409 {
		t.Fatalf("registering v3 under BACKWARD: %v; want 409, error_code 409", err)
	}
	t.Logf("v3 (a field without a default) refused: %d, error %d: %s", re.StatusCode, re.ErrorCode, re.Message)
	if versions, err := cl.SubjectVersions(ctx, orders); err != nil || !slices.Equal(versions, []int{1, 2}) {
		t.Fatalf("versions of %s: %v, %v; want [1 2]", orders, versions, err)
	}
	if found, err := cl.LookupSchema(ctx, orders, sr.Schema{Schema: orderV2}); err != nil || found.ID != id2 || found.Version != 2 {
		t.Fatalf("looking up v2: %+v, %v", found, err)
	}
	if usages, err := cl.SchemaUsagesByID(ctx, id1); err != nil || len(usages) != 1 || usages[0].Subject != orders || usages[0].Version != 1 {
		t.Fatalf("usages of id %d: %+v, %v", id1, usages, err)
	}

	// Protobuf, and a Protobuf schema importing it (a reference).
	id3, err := cl.RegisterSchema(ctx, shop, sr.Schema{Schema: orderProto, Type: sr.TypeProtobuf}, -1, -1)
	if err != nil {
		t.Fatalf("registering a .proto: %v", err)
	}
	s, err = cl.SchemaByID(ctx, id3)
	if err != nil || s.Type != sr.TypeProtobuf || s.Schema != orderProto {
		t.Fatalf("schema %d: %v %q, %v; want PROTOBUF %q", id3, s.Type, s.Schema, err, orderProto)
	}
	ref := sr.SchemaReference{Name: "shop/order.proto", Subject: shop, Version: 1}
	id4, err := cl.RegisterSchema(ctx, batches, sr.Schema{Schema: batchProto, Type: sr.TypeProtobuf, References: []sr.SchemaReference{ref}}, -1, -1)
	if err != nil {
		t.Fatalf("registering a .proto with a reference: %v", err)
	}
	s, err = cl.SchemaByID(ctx, id4)
	if err != nil || s.Type != sr.TypeProtobuf || s.Schema != batchProto || !slices.Equal(s.References, []sr.SchemaReference{ref}) {
		t.Fatalf("schema %d: %+v, %v", id4, s, err)
	}
	t.Logf("Protobuf: %s as id %d, %s importing it (reference %+v) as id %d; fetched by id with type and references", shop, id3, batches, ref, id4)
	if found, err := cl.LookupSchema(ctx, shop, sr.Schema{Schema: orderProto, Type: sr.TypeProtobuf}); err != nil || found.ID != id3 {
		t.Fatalf("looking up the .proto: %+v, %v", found, err)
	} else if found.Type != sr.TypeProtobuf {
		t.Logf("POST /subjects/%s (lookup) answers without schemaType: franz-go reads it as %v (Confluent's says PROTOBUF)", shop, found.Type)
	}

	// Unknown ids and subjects.
	_, err = cl.SchemaByID(ctx, 1<<30)
	if !errors.As(err, &re) || re.StatusCode != 404 || re.ErrorCode != 40403 {
		t.Fatalf("an unknown id: %v; want 404, error_code 40403", err)
	}
	t.Logf("an unknown id: %d, error %d: %s", re.StatusCode, re.ErrorCode, re.Message)
	_, err = cl.SubjectVersions(ctx, "smoke-none-"+run)
	if !errors.As(err, &re) || re.StatusCode != 404 || re.ErrorCode != 40401 {
		t.Fatalf("an unknown subject: %v; want 404, error_code 40401", err)
	}

	// Deletes, soft then hard; the referenced subject last.
	for _, subject := range []string{batches, shop, orders} {
		if _, err := cl.DeleteSubject(ctx, subject, sr.SoftDelete); err != nil {
			t.Fatalf("deleting %s: %v", subject, err)
		}
		if _, err := cl.DeleteSubject(ctx, subject, sr.HardDelete); err != nil {
			t.Fatalf("deleting %s for good: %v", subject, err)
		}
	}
	subjects, err := cl.Subjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range subjects {
		if strings.Contains(subject, run) {
			t.Fatalf("%s is still listed after its deletion", subject)
		}
	}
}

// A Durable registry keeps its schemas, under the same ids, through Restart (the issue's
// "registry stopped and restarted mid-run"); one in memory would forget them.
func TestRestart(t *testing.T) {
	r, err := Start(Options{Log: t.Logf, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cl, err := sr.NewClient(sr.URLs(r.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := cl.RegisterSchema(ctx, "restart-value", sr.Schema{Schema: orderV1}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SchemaByID(ctx, id); err == nil {
		t.Fatal("the registry answers after Stop")
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted in %v", r.Started.Round(time.Millisecond))
	if s, err := cl.SchemaByID(ctx, id); err != nil || s.Schema != orderV1 {
		t.Fatalf("schema %d after the restart: %q, %v", id, s.Schema, err)
	}
}

// rss is a process's resident memory, from /proc.
func rss(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")))
			return strconv.Itoa(n/1024) + " MB"
		}
	}
	return "unknown"
}
