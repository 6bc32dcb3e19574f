package sinks

import (
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// Written is a record as its sink would write it: what `pythia-pipe test` compares.
type Written struct {
	Topic   string // "" for a file
	Key     []byte
	Value   []byte // nil: a null value
	Headers []record.Header
}

// Renderer is a sink that can say what it would write for a record, without writing:
// topic, key and body computed as its Write computes them, and the same record faults (a
// topic_expr naming a topic it may not write to, a key expression that fails). What only the
// broker can say (a missing topic, a record larger than the topic takes) is not checked.
type Renderer interface {
	Render(rec *record.Record) (Written, error)
}

// Render is what the Kafka sink would write for rec.
func (k *KafkaSink) Render(rec *record.Record) (Written, error) {
	t := k.target()
	topic, key, err := route(&t, expr.NewBinder(t.TopicExpr, t.Key), rec)
	if err != nil {
		return Written{}, err
	}
	if t.TopicExpr != nil {
		if err := mayWrite(t.Allow, topic); err != nil {
			return Written{}, err
		}
	}
	value, err := encodeBody(&t, rec)
	if err != nil {
		return Written{}, err
	}
	return Written{Topic: topic, Key: key, Value: value, Headers: rec.Headers}, nil
}

// Render is what the file sink would write for rec: its key, headers and encoded body.
func (f *fileSink) Render(rec *record.Record) (Written, error) {
	value, err := Encode(rec, f.encode)
	if err != nil {
		return Written{}, err
	}
	return Written{Key: rec.Key, Value: value, Headers: rec.Headers}, nil
}
