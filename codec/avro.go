// Package codec reads and writes record bodies in Avro and Protobuf, as values of the shapes
// the rest of pythia-pipe knows (int, float64, string, bool, time.Time, []byte, []any,
// map[string]any), and describes their schemas as expr.Schema, so that expressions are
// type-checked against an Avro or Protobuf schema exactly as against a decode schema.
package codec

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/twmb/avro"
	"github.com/twmb/avro/atype"

	"github.com/pythia-pipe/pythia-pipe/expr"
)

// Avro is a parsed Avro schema: what it decodes and encodes, and its shape as expr.Schema.
type Avro struct {
	text   string
	schema *avro.Schema
	root   *avro.SchemaNode // references expanded
}

// ParseAvro parses an Avro schema (the text of an .avsc file, or of a registry's schema).
func ParseAvro(text string) (*Avro, error) {
	s, err := avro.Parse(text, avroCustom()...)
	if err != nil {
		return nil, &SchemaError{Format: "avro", Err: err}
	}
	return &Avro{text: text, schema: s, root: s.Root().ExpandReferences()}, nil
}

// avroCustom are the logical types decoded otherwise than twmb/avro does by default, to give
// values the expression layer has: a decimal as its exact digits (a string; a float would
// round), the time of day as a whole number, a duration and a UUID in a fixed as bytes and
// as text.
func avroCustom() []avro.SchemaOpt {
	return []avro.SchemaOpt{
		avro.CustomType{LogicalType: atype.Decimal, Decode: func(v any, n *avro.SchemaNode) (any, error) {
			b, ok := v.([]byte)
			if !ok {
				return nil, avro.ErrSkipCustomType
			}
			return decimalString(b, n.Scale), nil
		}},
		avro.CustomType{LogicalType: atype.TimeMillis},
		avro.CustomType{LogicalType: atype.TimeMicros},
		avro.CustomType{LogicalType: atype.Duration},
		avro.CustomType{LogicalType: atype.UUID, AvroType: atype.Fixed, Decode: func(v any, _ *avro.SchemaNode) (any, error) {
			b, ok := v.([]byte)
			if !ok || len(b) != 16 {
				return nil, avro.ErrSkipCustomType
			}
			return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
		}},
	}
}

// Text is the schema as it was parsed.
func (a *Avro) Text() string { return a.text }

// Schema is the shape of the values Decode returns and Encode takes.
func (a *Avro) Schema() *expr.Schema { return avroShape(a.root, 0) }

// Resolve is a codec that reads data written with writer's schema as values of a's (the
// reader's): fields a has and writer lacks take their defaults, fields writer has and a
// lacks are skipped, numbers are promoted (int to long, float to double).
func (a *Avro) Resolve(writer *Avro) (*Avro, error) {
	if writer.text == a.text {
		return a, nil
	}
	r, err := avro.Resolve(writer.schema, a.schema)
	if err != nil {
		return nil, &SchemaError{Format: "avro", Err: fmt.Errorf("data written with the registry's schema cannot be read as the stage's: %w", err)}
	}
	return &Avro{text: a.text, schema: r, root: a.root}, nil
}

// Decode reads one Avro body (the payload after the wire format's header).
func (a *Avro) Decode(payload []byte) (any, error) {
	var v any
	rest, err := a.schema.Decode(payload, &v)
	if err != nil {
		return nil, &DataError{Format: "avro", Err: err}
	}
	if len(rest) > 0 {
		return nil, &DataError{Format: "avro", Err: fmt.Errorf("%d bytes left over after the record", len(rest))}
	}
	return normalize(v), nil
}

// Encode appends the Avro encoding of v to dst. A value that does not fit the schema is an
// error naming the field.
func (a *Avro) Encode(dst []byte, v any) ([]byte, error) {
	if err := extraFields(a.root, v, ""); err != nil {
		return nil, err
	}
	b, err := a.schema.AppendEncode(dst, v)
	if err != nil {
		var se *avro.SemanticError
		if errors.As(err, &se) && se.Field != "" {
			msg := strings.TrimPrefix(strings.TrimPrefix(se.Error(), "avro: "), "field "+se.Field+": ")
			return nil, &DataError{Format: "avro", Field: se.Field, Err: errors.New(msg)}
		}
		return nil, &DataError{Format: "avro", Err: err}
	}
	return b, nil
}

// extraFields reports a field of a record value that its Avro record does not have: Avro
// would leave it out, and a value silently dropped is a value lost.
func extraFields(n *avro.SchemaNode, v any, path string) error {
	switch n.Type {
	case atype.Record:
		m, ok := v.(map[string]any)
		if !ok {
			return nil // the encoder says what is wrong
		}
		for k, x := range m {
			f := fieldOf(n, k)
			if f == nil {
				return &DataError{Format: "avro", Field: joinPath(path, k), Err: fmt.Errorf("not a field of record %s", n.Name)}
			}
			if err := extraFields(&f.Type, x, joinPath(path, k)); err != nil {
				return err
			}
		}
	case atype.Array:
		if xs, ok := v.([]any); ok && n.Items != nil {
			for i, x := range xs {
				if err := extraFields(n.Items, x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case atype.Map:
		if m, ok := v.(map[string]any); ok && n.Values != nil {
			for k, x := range m {
				if err := extraFields(n.Values, x, joinPath(path, k)); err != nil {
					return err
				}
			}
		}
	case "union":
		var records []*avro.SchemaNode
		for i := range n.Branches {
			if n.Branches[i].Type == atype.Record {
				records = append(records, &n.Branches[i])
			}
		}
		if len(records) == 1 { // with several, which one the value is for is the encoder's call
			return extraFields(records[0], v, path)
		}
	}
	return nil
}

func fieldOf(n *avro.SchemaNode, name string) *avro.SchemaField {
	for i := range n.Fields {
		if n.Fields[i].Name == name {
			return &n.Fields[i]
		}
	}
	return nil
}

// normalize turns what twmb/avro decodes into the values expressions work with.
func normalize(v any) any {
	switch x := v.(type) {
	case int32:
		return int(x)
	case int64:
		return int(x)
	case float32:
		return float64(x)
	case time.Time:
		return x.UTC()
	case *big.Rat: // big-decimal: its exact digits
		return ratString(x)
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	}
	return v
}

// decimalString writes a decimal's two's-complement unscaled value with scale digits after
// the point: exactly, as "-12.30".
func decimalString(b []byte, scale int) string {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b)*8)))
	}
	digits, neg := n.String(), n.Sign() < 0
	digits = strings.TrimPrefix(digits, "-")
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		digits = "-" + digits
	}
	return digits
}

// ratString writes r exactly, with as many decimals as it needs (r has a finite expansion:
// it came from a decimal).
func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	d := new(big.Int).Set(r.Denom())
	ten := big.NewInt(10)
	for k := 1; k <= 1000; k++ {
		if new(big.Int).Mod(new(big.Int).Exp(ten, big.NewInt(int64(k)), nil), d).Sign() == 0 {
			return r.FloatString(k)
		}
	}
	return r.FloatString(30)
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
