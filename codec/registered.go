package codec

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/pythia-pipe/pythia-pipe/schemareg"
)

// Registered is a schema a registry holds, compiled: an Avro schema, or a Protobuf file.
type Registered struct {
	Avro  *Avro
	Proto *ProtoFile
}

// Compile compiles a schema the registry gave, as format (avro or protobuf); a schema of
// another type is a SchemaError. A Protobuf schema's references are fetched from cl.
func Compile(ctx context.Context, cl *schemareg.Client, s sr.Schema, format string) (*Registered, error) {
	typ := map[sr.SchemaType]string{sr.TypeAvro: "avro", sr.TypeProtobuf: "protobuf", sr.TypeJSON: "json"}[s.Type]
	if typ != format {
		return nil, &SchemaError{Format: format, Err: fmt.Errorf("the registry's schema is %s, not %s", typ, format)}
	}
	if format == "avro" {
		a, err := ParseAvro(s.Schema)
		return &Registered{Avro: a}, err
	}
	files, err := cl.ProtoFiles(ctx, s, "registered.proto")
	if err != nil {
		return nil, err
	}
	f, err := CompileProto(ctx, "registered.proto", files)
	return &Registered{Proto: f}, err
}
