//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

const (
	orderProto = `syntax = "proto3";
package shop;

import "google/protobuf/timestamp.proto";

enum Region {
  EU = 0;
  US = 1;
  APAC = 2;
}

message Order {
  string order_id = 1;
  string customer_id = 2;
  double amount = 3;
  Region region = 4;
  google.protobuf.Timestamp placed_at = 5;
  optional string note = 6;
}
`
	orderTotalProto = `syntax = "proto3";
package shop.out;

import "google/protobuf/timestamp.proto";

enum Region {
  EU = 0;
  US = 1;
  APAC = 2;
}

message OrderTotal {
  string order_id = 1;
  string customer_id = 2;
  Region region = 3;
  google.protobuf.Timestamp placed_at = 4;
  int64 total_cents = 5;
  bool big = 6;
}
`
)

// TestAvroOrders with Protobuf: .proto schema files with a message name (an enum, a
// google.protobuf.Timestamp, an optional field), the input's schema under <topic>-value, the
// output's registered ahead (auto_register off). Inputs are written, and outputs read back
// with the registry's schema, by protocompile and dynamicpb directly.
func TestProtobufOrders(t *testing.T) {
	const n = 3000
	reg := sharedRegistry(t)
	cl := srClient(t, reg.URL)
	file, topics, group := pipeFile(t, "proto-orders", "",
		"stages:\n  - {name: parse, type: decode, format: protobuf, schema_file: '@DIR@/order.proto', message: Order}\n"+
			"  - {name: valid, type: filter, when: msg.amount > 0}\n"+
			"  - name: shape\n    type: map\n    set: {total_cents: int(round(msg.amount * 100)), big: msg.amount >= 1000}\n"+
			"    drop: [amount, note]\n"+
			"sinks:\n  - {name: out, type: kafka, topic: '@OUT@', encode: protobuf, schema_file: '@DIR@/order_total.proto', message: OrderTotal}\n",
		map[string]string{"order.proto": orderProto, "order_total.proto": orderTotalProto})
	in := register(t, cl, topics[0]+"-value", sr.Schema{Schema: orderProto, Type: sr.TypeProtobuf})
	out := register(t, cl, topics[1]+"-value", sr.Schema{Schema: orderTotalProto, Type: sr.TypeProtobuf})
	order := protoMessage(t, orderProto, "Order")
	recs := make([]devbroker.Record, 0, n)
	want, dead := map[string]map[string]any{}, map[string][]byte{}
	for i := range n {
		v := orderIn(i)
		amount, _ := strconv.ParseFloat(v["amount"].(string), 64)
		rec := devbroker.Record{Key: []byte(customer(i)), Headers: map[string]string{"seq": strconv.Itoa(i)},
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i))}
		body := map[string]any{"order_id": v["order_id"], "customer_id": v["customer_id"], "amount": amount,
			"region": v["region"], "placed_at": norm(v["placed_at"])}
		if v["note"] != nil {
			body["note"] = v["note"]
		}
		switch total, ok := orderTotal(i); {
		case i%50 == 7: // a JSON body, not framed for the registry
			rec.Value = []byte(fmt.Sprintf(`{"order_id":"o%d","amount":1}`, i))
			dead[strconv.Itoa(i)] = rec.Value
		case ok:
			total["total_cents"] = strconv.FormatInt(total["total_cents"].(int64), 10) // protojson's int64
			want[v["order_id"].(string)] = total
			fallthrough
		default:
			rec.Value = frameProto(t, in, order, body)
		}
		recs = append(recs, rec)
	}
	if err := kafka.Produce(context.Background(), topics[0], recs); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	runUntilDone(t, file, group, topics[0], runEnv(reg)...)
	took := time.Since(began)
	checkOut(t, topics[1], &protoReader{cl: cl, byID: map[int]protoreflect.FileDescriptor{}}, out, want)
	reason := checkDLQ(t, topics[2], dead, "parse", "magic byte 0")
	t.Logf("%d records in %v: %d out (schema id %d), %d filtered, %d dead-lettered (%s)",
		n, took.Round(time.Millisecond), len(want), out, n-len(want)-len(dead), len(dead), reason)
}

// compileProto compiles a .proto text (well-known imports at hand).
func compileProto(ctx context.Context, text string) (protoreflect.FileDescriptor, error) {
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"schema.proto": text})})}
	files, err := c.Compile(ctx, "schema.proto")
	if err != nil {
		return nil, err
	}
	return files[0], nil
}

// protoMessage is the message name of a .proto text.
func protoMessage(t *testing.T, text, name string) protoreflect.MessageDescriptor {
	t.Helper()
	fd, err := compileProto(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().ByName(protoreflect.Name(name))
	if md == nil {
		t.Fatalf("no message %s", name)
	}
	return md
}

// frameProto is v (as protojson takes it) in message md, after the Confluent header of id
// and the message's index (the first message of its file: 0).
func frameProto(t *testing.T, id int, md protoreflect.MessageDescriptor, v map[string]any) []byte {
	t.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(md)
	if err := protojson.Unmarshal(j, m); err != nil {
		t.Fatalf("%s: %v", j, err)
	}
	h, err := new(sr.ConfluentHeader).AppendEncode(nil, id, []int{md.Index()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.MarshalOptions{}.MarshalAppend(h, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// protoReader reads back Protobuf bodies framed for the registry, as protojson writes them
// (proto field names, every field).
type protoReader struct {
	cl   *sr.Client
	byID map[int]protoreflect.FileDescriptor
}

func (r *protoReader) read(ctx context.Context, b []byte) (int, map[string]any, error) {
	h := new(sr.ConfluentHeader)
	id, payload, err := h.DecodeID(b)
	if err != nil {
		return 0, nil, err
	}
	indexes, payload, err := h.DecodeIndex(payload, 8)
	if err != nil {
		return id, nil, err
	}
	fd, ok := r.byID[id]
	if !ok {
		s, err := r.cl.SchemaByID(ctx, id)
		if err != nil {
			return id, nil, fmt.Errorf("schema id %d: %w", id, err)
		}
		if fd, err = compileProto(ctx, s.Schema); err != nil {
			return id, nil, err
		}
		r.byID[id] = fd
	}
	if len(indexes) == 0 || indexes[0] >= fd.Messages().Len() {
		return id, nil, fmt.Errorf("message indexes %v", indexes)
	}
	md := fd.Messages().Get(indexes[0])
	for _, i := range indexes[1:] {
		md = md.Messages().Get(i)
	}
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(payload, m); err != nil {
		return id, nil, err
	}
	j, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return id, nil, err
	}
	var v map[string]any
	return id, v, json.Unmarshal(j, &v)
}
