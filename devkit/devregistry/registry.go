// Package devregistry is the schema registry of `pythia-pipe dev` and `pythia-pipe test`:
// franz-go's srfake in process (no socket), with what a local run needs of it: the sinks'
// schema files registered under their subjects, and inputs and table values written as JSON
// framed as the pipeline's first stage and its tables read them.
package devregistry

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/record"
	"github.com/pythia-pipe/pythia-pipe/schemareg"
	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// Unused are the registry block's settings a local run replaces: its variables may be unset.
var Unused = []string{"registry.urls", "registry.basic_auth", "registry.bearer_token", "registry.tls"}

// Registry is an empty registry in process.
type Registry struct{ fake *srfake.Registry }

// New starts an empty registry.
func New() *Registry { return &Registry{fake: srfake.NewRegistry()} }

// Options make a pipeline's registry block reach r, whatever its URLs.
func (r *Registry) Options() schemareg.Options {
	return schemareg.Options{Transport: schemareg.InProcess(r.fake.Handler()), URLs: []string{"http://in-process-registry"}}
}

// Prepare registers the schema file of each sink that writes with one under its subject, as
// the schemas a production registry would hold.
func (r *Registry) Prepare(p *pipeline.Pipeline) error {
	for _, s := range p.Sinks {
		sh, ok := s.Impl.(sinks.SchemaHolder)
		if !ok {
			continue
		}
		if subject, schema, ok := sh.BodySchema().Local(); ok {
			if _, _, err := r.fake.RegisterSchema(subject, schema); err != nil {
				return fmt.Errorf("sink %s: registering its schema_file under %s: %w", s.Name, subject, err)
			}
		}
	}
	return nil
}

// Framer writes values as a stage reads them: the pipeline's first stage, a decode of format
// avro or protobuf, or a table of such values.
type Framer struct {
	as    string // how the stage reads the values, for errors: "stage parse reads it"
	frame func(ctx context.Context, v any) ([]byte, error)
}

// FramerOf is the framer of p's first stage; nil when it reads no registry's format.
func FramerOf(p *pipeline.Pipeline) *Framer {
	if len(p.Entry) == 0 {
		return nil
	}
	first := p.StageByName(p.Entry[0])
	if first == nil {
		return nil
	}
	if f, ok := first.Impl.(stages.InputFramer); ok && (first.Fields.String("format") == "avro" || first.Fields.String("format") == "protobuf") {
		return &Framer{as: "stage " + first.Name + " reads it", frame: f.FrameInput}
	}
	return nil
}

// TableFramerOf is the framer of the values of table topic: the first stage looking it up,
// when its values are of a registry's format; nil otherwise.
func TableFramerOf(p *pipeline.Pipeline, topic string) *Framer {
	for _, st := range p.Stages {
		u, ok := stages.TableUserOf(st.Impl)
		if !ok || u.TableTopic() != topic {
			continue
		}
		if f, ok := stages.TableFramerOf(st.Impl); ok {
			return &Framer{as: "the table of stage " + st.Name + " reads it", frame: f.FrameTableValue}
		}
		return nil
	}
	return nil
}

// Frame writes a JSON object's text as the stage reads it; other text comes back as it is,
// with false (a record to show what is not framed going to the DLQ).
func (fr *Framer) Frame(ctx context.Context, value []byte) ([]byte, bool, error) {
	if fr == nil || len(value) == 0 || value[0] != '{' {
		return value, false, nil
	}
	v, err := record.DecodeJSON(value)
	if err != nil {
		return value, false, nil
	}
	b, err := fr.frame(ctx, v)
	if err != nil {
		return value, false, fmt.Errorf("cannot be written as %s: %w", fr.as, err)
	}
	return b, true, nil
}

// Readable is a body a sink wrote with a schema, read back as JSON for people; b as it is
// otherwise.
func Readable(s *pipeline.Sink, b []byte) []byte {
	sh, ok := s.Impl.(sinks.SchemaHolder)
	if !ok {
		return b
	}
	if v, ok := sh.BodySchema().Decode(b); ok {
		if j, err := record.AppendJSON(nil, v); err == nil {
			return j
		}
	}
	return b
}
