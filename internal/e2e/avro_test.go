//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/registry"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// The Avro tests: pipelines on real Kafka reading and writing Avro framed for a real
// Apicurio Registry (its Confluent API), every output read back with the registry's schema
// and compared record by record.

// The orders example on Avro (pipelines/orders-avro.yaml as shipped: decode with
// schemas/order.avsc, a filter and a map on its typed fields, a sink writing
// schemas/order-total.avsc with auto_register off) on real Kafka and Apicurio: the input's
// schema under <topic>-value, the output's registered ahead under its subject. Every record
// out is framed with that schema's id and reads back, with the registry's schema, to exactly
// the expected values; the filtered ones are not there, the ones not framed are in the DLQ
// as they came, with the reason.
func TestAvroOrders(t *testing.T) {
	const n = 3000
	reg := sharedRegistry(t)
	cl := srClient(t, reg.URL)
	file, topics, group := exampleFile(t, "orders")
	in := register(t, cl, topics[0]+"-value", sr.Schema{Schema: schemaText(t, "order.avsc")})
	out := register(t, cl, topics[1]+"-value", sr.Schema{Schema: schemaText(t, "order-total.avsc")})
	recs := framedOrders(t, avroWriter(t, in, schemaText(t, "order.avsc")), 0, n, orderIn)
	want, dead := map[string]map[string]any{}, map[string][]byte{}
	for i := range n {
		if i%50 == 7 { // a JSON body, not framed for the registry
			recs[i].Value = []byte(fmt.Sprintf(`{"order_id":"o%d","amount":"1.00"}`, i))
			dead[strconv.Itoa(i)] = recs[i].Value
		} else if v, ok := orderTotal(i); ok {
			want[v["order_id"].(string)] = v
		}
	}
	if err := kafka.Produce(context.Background(), topics[0], recs); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	runUntilDone(t, file, group, topics[0], runEnv(reg)...)
	took := time.Since(began)
	checkOut(t, topics[1], newReader(cl), out, want)
	reason := checkDLQ(t, topics[2], dead, "parse", "magic byte 0")
	if got := versions(t, cl, topics[1]+"-value"); !slices.Equal(got, []int{1}) {
		t.Errorf("the output subject has versions %v: the sink registered something (auto_register is off)", got)
	}
	t.Logf("%d records in %v: %d out (schema id %d), %d filtered, %d dead-lettered (%s)",
		n, took.Round(time.Millisecond), len(want), out, n-len(want)-len(dead), len(dead), reason)
}

// A compatible new version of the input's schema (a field with a default) is registered
// under BACKWARD while two pipelines run, and records are then written with both versions
// (an old producer beside an upgraded one). One pipeline reads with the new version as its
// schema_file: records of version 1 get the field's default. The other is typed by the
// subject's latest when it started (version 1) and writes with its output subject's latest
// (no schema_file): records of version 2 are read with the field skipped. Every record comes
// out as expected from both, none dead-lettered.
func TestAvroSchemaEvolution(t *testing.T) {
	const n = 1000 // records before the new version, and after
	reg := sharedRegistry(t)
	cl := srClient(t, reg.URL)
	v1 := schemaText(t, "order.avsc")
	v2 := addField(t, v1, `{"name": "channel", "type": "string", "default": "web"}`)
	total := schemaText(t, "order-total.avsc")
	withChannel := addField(t, total, `{"name": "channel", "type": "string"}`)
	stages := "stages:\n  - {name: parse, type: decode, format: avro%s}\n" +
		"  - {name: valid, type: filter, when: float(msg.amount) > 0}\n" +
		"  - name: shape\n    type: map\n    set: {total_cents: int(round(float(msg.amount) * 100)), big: float(msg.amount) >= 1000}\n" +
		"    drop: [amount, note]\n" +
		"sinks:\n  - {name: out, type: kafka, topic: '@OUT@', encode: avro%s}\n"
	fileA, topicsA, groupA := pipeFile(t, "evolve-file", "", fmt.Sprintf(stages, ", schema_file: '@DIR@/order-v2.avsc'", ", schema_file: '@DIR@/with-channel.avsc'"),
		map[string]string{"order-v2.avsc": v2, "with-channel.avsc": withChannel})
	input := topicsA[0]
	subject := input + "-value"
	id1 := register(t, cl, subject, sr.Schema{Schema: v1})
	setBackward(t, cl, subject)
	outA := register(t, cl, topicsA[1]+"-value", sr.Schema{Schema: withChannel})
	fileB, topicsB, groupB := pipeFile(t, "evolve-subject", input, fmt.Sprintf(stages, "", ""), nil)
	outB := register(t, cl, topicsB[1]+"-value", sr.Schema{Schema: total})

	old := avroWriter(t, id1, v1)
	if err := kafka.Produce(context.Background(), input, framedOrders(t, old, 0, n, orderIn)); err != nil {
		t.Fatal(err)
	}
	a, b := startPipe(t, fileA, reg), startPipe(t, fileB, reg) // B is typed by version 1, the latest now
	waitCaughtUp(t, a, groupA, input)
	waitCaughtUp(t, b, groupB, input)

	id2, err := cl.RegisterSchema(timeout(t, time.Minute), subject, sr.Schema{Schema: v2}, -1, -1)
	if err != nil {
		t.Fatalf("registering version 2 (a field with a default) under BACKWARD: %v", err)
	}
	if got := versions(t, cl, subject); id2 == id1 || !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("after registering version 2: ids %d and %d, versions %v", id1, id2, got)
	}
	channel := func(i int) string { return []string{"app", "store"}[i%2] }
	upgraded := avroWriter(t, id2, v2)
	var recs []devbroker.Record
	for i := n; i < 2*n; i++ { // one in three by the old producer, the others by the upgraded one
		if i%3 == 0 {
			recs = append(recs, framedOrders(t, old, i, i+1, orderIn)...)
			continue
		}
		recs = append(recs, framedOrders(t, upgraded, i, i+1, func(i int) map[string]any {
			v := orderIn(i)
			v["channel"] = channel(i)
			return v
		})...)
	}
	if err := kafka.Produce(context.Background(), input, recs); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, a, groupA, input)
	waitCaughtUp(t, b, groupB, input)
	stopPipe(t, a)
	stopPipe(t, b)

	wantA, wantB := map[string]map[string]any{}, map[string]map[string]any{}
	for i := range 2 * n {
		v, ok := orderTotal(i)
		if !ok {
			continue
		}
		wantB[v["order_id"].(string)] = v
		withCh := map[string]any{"channel": "web"} // version 1's records: the default
		for k, x := range v {
			withCh[k] = x
		}
		if i >= n && i%3 != 0 {
			withCh["channel"] = channel(i)
		}
		wantA[v["order_id"].(string)] = withCh
	}
	rd := newReader(cl)
	checkOut(t, topicsA[1], rd, outA, wantA)
	checkOut(t, topicsB[1], rd, outB, wantB)
	for _, dlq := range []string{topicsA[2], topicsB[2]} {
		checkDLQ(t, dlq, nil, "")
	}
	t.Logf("version 1 as id %d, version 2 (channel, default web) as id %d mid-stream under BACKWARD; %d records, %d out of each pipeline, none dead-lettered",
		id1, id2, 2*n, len(wantA))
}

// An incompatible schema (a field without a default) is refused by the registry under
// BACKWARD when a sink with auto_register tries to register it: the pipeline stops with an
// error naming the subject and the registry's answer; nothing is written, dead-lettered or
// committed, and the subject keeps its one version.
func TestAvroIncompatibleSchemaRefused(t *testing.T) {
	reg := sharedRegistry(t)
	cl := srClient(t, reg.URL)
	total := schemaText(t, "order-total.avsc")
	incompatible := addField(t, total, `{"name": "warehouse", "type": "string"}`)
	file, topics, group := pipeFile(t, "incompatible", "",
		"stages:\n  - {name: parse, type: decode, format: avro, schema_file: '@DIR@/order.avsc'}\n"+
			"  - name: shape\n    type: map\n    set: {total_cents: int(round(float(msg.amount) * 100)), big: float(msg.amount) >= 1000, warehouse: '\"w1\"'}\n"+
			"    drop: [amount, note]\n"+
			"sinks:\n  - {name: out, type: kafka, topic: '@OUT@', encode: avro, schema_file: '@DIR@/incompatible.avsc', auto_register: true}\n",
		map[string]string{"order.avsc": schemaText(t, "order.avsc"), "incompatible.avsc": incompatible})
	in := register(t, cl, topics[0]+"-value", sr.Schema{Schema: schemaText(t, "order.avsc")})
	subject := topics[1] + "-value"
	register(t, cl, subject, sr.Schema{Schema: total})
	setBackward(t, cl, subject)
	if err := kafka.Produce(context.Background(), topics[0], framedOrders(t, avroWriter(t, in, schemaText(t, "order.avsc")), 0, 100, orderIn)); err != nil {
		t.Fatal(err)
	}
	p := startPipe(t, file, reg)
	code := p.Wait(t, 2*time.Minute)
	out := p.Output()
	last := testproc.LastLines(out, 1)
	if code == 0 {
		t.Fatalf("exit 0; want the pipeline to stop on the refused schema:\n%s", testproc.LastLines(out, 20))
	}
	// The registry's reason, as Apicurio words it, names the field that makes it incompatible.
	for _, want := range []string{"subject " + subject, "HTTP 409", "error code 409", "Incompatible", "warehouse"} {
		if !strings.Contains(last, want) {
			t.Errorf("the error does not say %q:\n%s", want, last)
		}
	}
	for _, topic := range topics[1:] {
		if n := written(topic); n != 0 {
			t.Errorf("%s holds %d records", topic, n)
		}
	}
	if c := kafka.Committed(group, topics[0]); len(c) > 0 {
		for p, at := range c {
			if at > 0 {
				t.Errorf("partition %d committed at %d: records were settled though none was written", p, at)
			}
		}
	}
	if got := versions(t, cl, subject); !slices.Equal(got, []int{1}) {
		t.Errorf("%s has versions %v, want [1]", subject, got)
	}
	t.Logf("exit %d: %s", code, last)
}

// A record framed with a schema id the registry does not have is the record's fault: it
// goes to the DLQ as it came, the registry's answer in its reason; the records around it
// pass as expected.
func TestAvroUnknownSchemaID(t *testing.T) {
	const n, unknown = 1000, 2_000_000_000
	reg := sharedRegistry(t)
	cl := srClient(t, reg.URL)
	file, topics, group := exampleFile(t, "unknown-id")
	in := register(t, cl, topics[0]+"-value", sr.Schema{Schema: schemaText(t, "order.avsc")})
	out := register(t, cl, topics[1]+"-value", sr.Schema{Schema: schemaText(t, "order-total.avsc")})
	if _, err := cl.SchemaByID(timeout(t, time.Minute), unknown); err == nil {
		t.Fatalf("the registry has a schema of id %d", unknown)
	}
	known, stranger := avroWriter(t, in, schemaText(t, "order.avsc")), avroWriter(t, unknown, schemaText(t, "order.avsc"))
	var recs []devbroker.Record
	want, dead := map[string]map[string]any{}, map[string][]byte{}
	for i := range n {
		if i%25 == 3 {
			recs = append(recs, framedOrders(t, stranger, i, i+1, orderIn)...)
			dead[strconv.Itoa(i)] = recs[i].Value
			continue
		}
		recs = append(recs, framedOrders(t, known, i, i+1, orderIn)...)
		if v, ok := orderTotal(i); ok {
			want[v["order_id"].(string)] = v
		}
	}
	if err := kafka.Produce(context.Background(), topics[0], recs); err != nil {
		t.Fatal(err)
	}
	runUntilDone(t, file, group, topics[0], runEnv(reg)...)
	checkOut(t, topics[1], newReader(cl), out, want)
	reason := checkDLQ(t, topics[2], dead, "parse", fmt.Sprintf("schema id %d", unknown), "HTTP 404", "error code 40403")
	t.Logf("%d records: %d with unknown schema id %d dead-lettered (%s); %d out", n, len(dead), unknown, reason, len(want))
}

// The registry (Durable: its schemas kept) is stopped mid-run and started again. During the
// outage a sink writes its first record (its schema must be looked up) and records arrive
// framed with a schema id the decode stage has not fetched yet: they wait (the decode's
// registry_waiting gauge shows them, the sink says it waits), nothing is dead-lettered, and
// after the restart every record comes out exactly as expected, once.
func TestAvroRegistryRestart(t *testing.T) {
	const n = 2000
	reg, err := registry.Start(registry.Options{Durable: true, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	cl := srClient(t, reg.URL)
	v1 := schemaText(t, "order.avsc")
	v2 := addField(t, v1, `{"name": "channel", "type": "string", "default": "web"}`)
	total := schemaText(t, "order-total.avsc")
	sink := "{name: %[1]s, type: kafka, topic: '@OUT@%[2]s', encode: avro, schema_file: '@DIR@/order-total.avsc'}"
	file, topics, group := pipeFile(t, "restart", "",
		"stages:\n  - {name: parse, type: decode, format: avro, schema_file: '@DIR@/order.avsc'}\n"+
			"  - {name: valid, type: filter, when: float(msg.amount) > 0}\n"+
			"  - name: shape\n    type: map\n    set: {total_cents: int(round(float(msg.amount) * 100)), big: float(msg.amount) >= 1000}\n"+
			"    drop: [amount, note]\n"+
			"  - name: route\n    type: branch\n    routes: [{when: msg.big, to: big}, {to: out}]\n"+
			"sinks:\n  - "+fmt.Sprintf(sink, "out", "")+"\n  - "+fmt.Sprintf(sink, "big", "-big")+"\n",
		map[string]string{"order.avsc": v1, "order-total.avsc": total})
	big := topics[1] + "-big"
	if err := kafka.CreateTopic(big, 3); err != nil {
		t.Fatal(err)
	}
	id1 := register(t, cl, topics[0]+"-value", sr.Schema{Schema: v1})
	id2 := register(t, cl, topics[0]+"-value", sr.Schema{Schema: v2}) // no record carries it before the outage
	outID := register(t, cl, topics[1]+"-value", sr.Schema{Schema: total})
	bigID := register(t, cl, big+"-value", sr.Schema{Schema: total})
	old, upgraded := avroWriter(t, id1, v1), avroWriter(t, id2, v2)
	withChannel := func(i int) map[string]any {
		v := orderIn(i)
		v["channel"] = "app"
		return v
	}
	// Orders i%10 == 2 are big: none before the outage, so that sink big first writes during it.
	some := func(w writer, from, to int, keep func(int) bool, value func(int) map[string]any) []devbroker.Record {
		var recs []devbroker.Record
		for i := from; i < to; i++ {
			if keep(i) {
				recs = append(recs, framedOrders(t, w, i, i+1, value)...)
			}
		}
		return recs
	}
	isBig := func(i int) bool { return i%10 == 2 }
	notBig := func(i int) bool { return !isBig(i) }

	addr := freeAddr(t)
	p := startPipe(t, file, reg, "--metrics-addr", addr)
	if err := kafka.Produce(context.Background(), topics[0], some(old, 0, n, notBig, orderIn)); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, p, group, topics[0])
	if written(big) != 0 {
		t.Fatalf("%s holds records before the outage", big)
	}

	if err := reg.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if err := kafka.Produce(context.Background(), topics[0], some(old, n, 2*n, isBig, orderIn)); err != nil {
		t.Fatal(err)
	}
	var sinkWaits string
	testproc.WaitFor(t, time.Minute, "sink big to wait for the registry", func() bool {
		for _, line := range strings.Split(p.Output(), "\n") {
			if strings.Contains(line, "waiting") && strings.Contains(line, `"stage":"big"`) && strings.Contains(line, "schema registry") {
				sinkWaits = line
				return true
			}
		}
		return false
	})
	t.Logf("sink big: %s", sinkWaits)
	if err := kafka.Produce(context.Background(), topics[0], some(upgraded, n, 2*n, notBig, withChannel)); err != nil {
		t.Fatal(err)
	}
	testproc.WaitFor(t, time.Minute, "records waiting in decode for the registry", func() bool {
		v, ok := metric(addr, "pythia_pipe_registry_waiting", `stage="parse"`)
		return ok && v > 0
	})
	switch {
	case !p.Running():
		t.Fatalf("pythia-pipe exited during the outage:\n%s", testproc.LastLines(p.Output(), 20))
	case written(topics[2]) != 0:
		t.Fatalf("records were dead-lettered during the outage")
	case written(big) != 0:
		t.Fatalf("sink big wrote during the outage")
	case kafka.CaughtUp(group, topics[0]):
		t.Fatalf("the group caught up during the outage: the registry was not needed")
	}
	if err := reg.Restart(); err != nil {
		t.Fatal(err)
	}
	outage, back := time.Since(stopped), time.Now()
	waitCaughtUp(t, p, group, topics[0])
	recovered := time.Since(back)
	stopPipe(t, p)

	wantOut, wantBig := map[string]map[string]any{}, map[string]map[string]any{}
	for i := range 2 * n {
		v, ok := orderTotal(i)
		switch {
		case !ok || (i < n && isBig(i)):
		case v["big"] == true:
			wantBig[v["order_id"].(string)] = v
		default:
			wantOut[v["order_id"].(string)] = v
		}
	}
	rd := newReader(cl)
	checkOut(t, topics[1], rd, outID, wantOut)
	checkOut(t, big, rd, bigID, wantBig)
	checkDLQ(t, topics[2], nil, "")
	t.Logf("registry down for %v, its restart included (%v): records waited in decode and in sink big; caught up %v later; %d out, %d big, none dead-lettered or twice",
		outage.Round(time.Millisecond), reg.Started.Round(time.Millisecond), recovered.Round(time.Millisecond), len(wantOut), len(wantBig))
}
