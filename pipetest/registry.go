package pipetest

import (
	"context"
	"fmt"

	"github.com/pythia-pipe/pythia-pipe/devkit/devregistry"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// framed prepares a case's registry and inputs for a pipeline that reads or writes Avro or
// Protobuf: the sinks' schema files are registered under their subjects, and an input given
// as a mapping is written as the first stage reads it (its schema registered, the record
// framed with its id). Inputs given as strings stay as written: a test of what is not framed.
func framed(ctx context.Context, p *pipeline.Pipeline, reg *devregistry.Registry, inputs []Input, recs []*record.Record) []string {
	if err := reg.Prepare(p); err != nil {
		return []string{err.Error()}
	}
	fr := devregistry.FramerOf(p)
	for i, rec := range recs {
		if !inputs[i].Written {
			continue
		}
		b, _, err := fr.Frame(ctx, rec.Value)
		if err != nil {
			return []string{fmt.Sprintf("input %d %v", i+1, err)}
		}
		rec.Value = b
	}
	return nil
}

// framedTables are the test file's tables as the pipeline's table lookups read them: a value
// given as a mapping, of a table of Avro or Protobuf values, written with the table's schema
// (registered under its subject, framed with its id). Values given as strings stay as
// written: a test of what is not framed.
func framedTables(ctx context.Context, p *pipeline.Pipeline, tables map[string][]TableRecord) (map[string][]TableRecord, []string) {
	out := make(map[string][]TableRecord, len(tables))
	for topic, recs := range tables {
		fr := devregistry.TableFramerOf(p, topic)
		if fr == nil {
			out[topic] = recs
			continue
		}
		framed := make([]TableRecord, len(recs))
		for i, r := range recs {
			framed[i] = r
			if !r.Written {
				continue
			}
			b, _, err := fr.Frame(ctx, r.Value)
			if err != nil {
				return nil, []string{fmt.Sprintf("tables.%s[%d] %v", topic, i, err)}
			}
			framed[i].Value = b
		}
		out[topic] = framed
	}
	return out, nil
}
