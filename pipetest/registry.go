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
