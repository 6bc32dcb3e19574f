package engine

import (
	"fmt"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// A stateful stage that keeps state by a computed key (dedupe by msg.payment_id) needs one
// key's records in one partition, which the source's partitions (by the record's key) do not
// give. As Kafka Streams does, its records go through a repartition topic: what reached the
// stage is written there, in the partition of its state key's hash, and read back by the
// source's group, which hands it to the stage itself. The stage's store is then that topic's
// partition's. A run in memory has one instance and no Kafka: it repartitions nothing.

// arrival is where the records of a repartition topic go, and how their bodies are read
// back: as the schema of what reached the stage says (nil: bytes, never decoded).
type arrival struct {
	node   *node
	schema *expr.Schema
}

// addRepartitions puts a repartition sink node in front of each stateful stage that keeps
// state by a computed key: the edges into the stage go to it, and the stage takes its
// records from the repartition topic instead.
func (e *Engine) addRepartitions() {
	for _, st := range e.p.Stateful() {
		topic := e.p.Repartition(st)
		if topic == "" {
			continue
		}
		s := e.nodes[st.Name]
		name := st.Name + ".repartition"
		r := &node{name: name, observe: ignore, workers: 1, ins: makeInputs(1, true), stats: e.counter(name, "repartition")}
		e.nodes[name] = r
		for _, n := range e.nodes {
			for i, t := range n.targets {
				if t == s {
					n.targets[i] = r
				}
			}
		}
		if e.entry == s {
			e.entry = r
		}
		e.order = append(e.order, r)
		e.repartitions = append(e.repartitions, repartition{node: r, stage: st.Name, topic: topic, by: st.Impl.(stages.Stateful).StateKey()})
		if e.arrivals == nil {
			e.arrivals = map[string]arrival{}
		}
		e.arrivals[topic] = arrival{node: s, schema: st.In}
	}
}

// repartition is a repartition sink node and what it writes.
type repartition struct {
	node         *node
	stage, topic string
	by           *expr.Program
}

// openRepartitions opens the repartition topics' writers.
func (e *Engine) openRepartitions() error {
	for _, r := range e.repartitions {
		sk, err := e.open(r.node.name, sinks.Repartition(r.stage, r.topic, r.by), e.reporter(r.node))
		if err != nil {
			return fmt.Errorf("stage %s: its repartition topic %s: %w", r.stage, r.topic, err)
		}
		r.node.sink = sk
	}
	return nil
}

// dispatch hands a batch from the source to the first stage, and the records read back from
// repartition topics to their stages, their bodies read as the stage took them.
func (e *Engine) dispatch(batch []*record.Record) {
	if len(e.arrivals) == 0 && len(e.tickTo) == 0 {
		e.entry.send(e.hard, batch)
		return
	}
	var first []*record.Record
	back := map[*node][]*record.Record{}
	for _, rec := range batch {
		if rec.Tick { // an exactly-once source's: to the stage it ticks
			if n := e.tickTo[rec.Topic]; n != nil {
				back[n] = append(back[n], rec)
			} else {
				rec.Track.Done()
			}
			continue
		}
		a, ok := e.arrivals[rec.Topic]
		if !ok {
			first = append(first, rec)
			continue
		}
		if err := readBack(rec, a.schema); err != nil {
			e.outcome(a.node, rec, err)
			continue
		}
		back[a.node] = append(back[a.node], rec)
	}
	if len(first) > 0 {
		e.entry.send(e.hard, first)
	}
	for n, recs := range back {
		n.send(e.hard, recs)
	}
}

// readBack decodes a body a repartition sink wrote: as JSON conformed to the schema (text for
// a string schema), or left as bytes without one.
func readBack(rec *record.Record, schema *expr.Schema) error {
	switch {
	case schema == nil || rec.Value == nil: // bytes, or a tombstone
		rec.Decoded = schema != nil
		return nil
	case schema.Kind == expr.String:
		rec.Msg, rec.Decoded = string(rec.Value), true
		return nil
	}
	v, err := record.DecodeJSON(rec.Value)
	if err == nil {
		v, err = schema.Coerce(v, "")
	}
	if err != nil {
		return fmt.Errorf("reading back a repartitioned record: %w", err)
	}
	rec.Msg, rec.Decoded = v, true
	return nil
}
