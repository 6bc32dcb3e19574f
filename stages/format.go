package stages

import (
	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// formatBlock is where the fields of a body's format are written: a decode stage's, or an
// enrich's table's. Both read JSON by a schema block, or Avro and Protobuf framed for a
// registry, by the same fields and with the same checks.
type formatBlock struct {
	fields *spec.Value // format, subject, schema_file, message, schema
	topics []string    // their <topic>-value is the default subject
	is     string      // the messages' "(this stage decodes avro)"
	what   string      // what a schema types, in messages: "stage", "table"
	// untyped is the warning of a registry that did not answer: "msg is not type-checked".
	untyped string
}

// readFormat reads b's format and the fields that go with it: for avro and protobuf, the
// framed reader and the schema it types values by; for json, the schema block (nil without
// one). A field that does not go with the format is an error at its line.
func readFormat(c *Config, b formatBlock) (*framed, *expr.Schema) {
	format := b.fields.String("format")
	var f *framed
	var typed *expr.Schema
	if format == "avro" || format == "protobuf" {
		f, typed = buildFramed(c, b, format)
	} else {
		for _, name := range []string{"subject", "schema_file", "message"} {
			if v := b.fields.Get(name); v.Set {
				c.Parser.Errorf(v.Pos, v.Path, "%s applies to formats avro and protobuf (%s %s)", name, b.is, format)
			}
		}
	}
	if m := b.fields.Get("message"); m.Set && format == "avro" {
		c.Parser.Errorf(m.Pos, m.Path, "message names a Protobuf message type: an Avro schema has one record")
	}
	if sv := b.fields.Get("schema"); sv.Set {
		if format != "json" {
			hint := ""
			if f != nil {
				hint = ": the registry's schema (or schema_file) types it"
			}
			c.Parser.Errorf(sv.Pos, sv.Path, "a schema applies to format json only (%s %s)%s", b.is, format, hint)
		} else {
			typed = parseSchema(c.Parser, sv.Node, sv.Path)
		}
	}
	return f, typed
}
