package codec

import (
	"github.com/twmb/avro"
	"github.com/twmb/avro/atype"

	"github.com/pythia-pipe/pythia-pipe/expr"
)

// maxDepth bounds the nesting of a schema's shape: a recursive Avro record (a tree node whose
// children are nodes) is described that deep, and as any below.
const maxDepth = 32

// avroShape is an Avro schema as expr.Schema:
//
//	record → object (closed)          map → object whose every field is of the values' type
//	array → list                      enum, string, uuid → string
//	int, long, time-millis/micros → int    float, double → float    boolean → bool
//	timestamp-*, local-timestamp-*, date → time    bytes, fixed, duration → bytes
//	decimal, big-decimal → string (its exact digits)    null → any?
//	a union with null → its other branch, optional; other unions → any (one kind: that kind)
func avroShape(n *avro.SchemaNode, depth int) *expr.Schema {
	if n == nil || depth > maxDepth {
		return &expr.Schema{Kind: expr.Any}
	}
	switch n.LogicalType {
	case atype.TimestampMillis, atype.TimestampMicros, atype.TimestampNanos, atype.LocalTimestampMillis,
		atype.LocalTimestampMicros, atype.LocalTimestampNanos, atype.Date:
		if n.Type == atype.Int || n.Type == atype.Long {
			return &expr.Schema{Kind: expr.Time}
		}
	case atype.Decimal, atype.BigDecimal:
		if n.Type == atype.Bytes || n.Type == atype.Fixed {
			return &expr.Schema{Kind: expr.String}
		}
	case atype.UUID:
		if n.Type == atype.String || (n.Type == atype.Fixed && n.Size == 16) {
			return &expr.Schema{Kind: expr.String}
		}
	}
	switch n.Type {
	case atype.Null:
		return &expr.Schema{Kind: expr.Any, Optional: true}
	case atype.Boolean:
		return &expr.Schema{Kind: expr.Bool}
	case atype.Int, atype.Long:
		return &expr.Schema{Kind: expr.Int}
	case atype.Float, atype.Double:
		return &expr.Schema{Kind: expr.Float}
	case atype.String, atype.Enum:
		return &expr.Schema{Kind: expr.String}
	case atype.Bytes, atype.Fixed:
		return &expr.Schema{Kind: expr.Bytes}
	case atype.Array:
		return &expr.Schema{Kind: expr.List, Elem: avroShape(n.Items, depth+1)}
	case atype.Map:
		return &expr.Schema{Kind: expr.Object, Fields: map[string]*expr.Schema{}, Open: avroShape(n.Values, depth+1)}
	case atype.Record:
		s := &expr.Schema{Kind: expr.Object, Fields: make(map[string]*expr.Schema, len(n.Fields))}
		for i := range n.Fields {
			s.Fields[n.Fields[i].Name] = avroShape(&n.Fields[i].Type, depth+1)
		}
		return s
	case "union":
		return unionShape(n, depth)
	}
	return &expr.Schema{Kind: expr.Any} // a recursive type's reference
}

func unionShape(n *avro.SchemaNode, depth int) *expr.Schema {
	var branches []*expr.Schema
	null := false
	for i := range n.Branches {
		if n.Branches[i].Type == atype.Null {
			null = true
			continue
		}
		branches = append(branches, avroShape(&n.Branches[i], depth+1))
	}
	var s *expr.Schema
	switch {
	case len(branches) == 0:
		s = &expr.Schema{Kind: expr.Any}
	case len(branches) == 1:
		c := *branches[0]
		s = &c
	default:
		s = &expr.Schema{Kind: expr.Any}
		if same(branches) {
			c := *branches[0]
			s = &c
		}
	}
	s.Optional = s.Optional || null
	return s
}

// same reports branches all of one scalar kind (["int", "long"]), read alike.
func same(branches []*expr.Schema) bool {
	for _, b := range branches[1:] {
		if b.Kind != branches[0].Kind || b.Kind == expr.Object || b.Kind == expr.List {
			return false
		}
	}
	return true
}
