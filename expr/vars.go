package expr

import (
	"slices"
	"sync"

	"github.com/expr-lang/expr/ast"

	"github.com/pythia-pipe/pythia-pipe/record"
)

// Vars is the runtime environment of one record.
type Vars map[string]any

// uses is a set of variables, bit i standing for varNames[i].
type uses uint8

// The bits of uses, in the order of varNames.
const (
	usesMsg uses = 1 << iota
	usesKey
	usesHeaders
	usesTopic
	usesPartition
	usesOffset
	usesTimestamp
)

// usesOf walks an expression for the variables it reads.
func usesOf(n ast.Node) uses {
	var v usesVisitor
	ast.Walk(&n, &v)
	return v.uses
}

type usesVisitor struct{ uses uses }

func (v *usesVisitor) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		if i := slices.Index(varNames, id.Value); i >= 0 {
			v.uses |= 1 << i
		}
	}
}

// Binder makes the environments of a fixed set of programs (one stage's, or one sink's): it
// fills in only the variables they read, the headers map above all, and reuses environments.
// It is safe for concurrent use.
type Binder struct {
	uses uses
	pool sync.Pool
}

// NewBinder returns a Binder for progs; nil programs are skipped.
func NewBinder(progs ...*Program) *Binder {
	b := &Binder{}
	for _, p := range progs {
		if p != nil {
			b.uses |= p.uses
		}
	}
	b.pool.New = func() any { return make(Vars, len(varNames)) }
	return b
}

// Bind returns rec's environment. Give it back with Release once the programs have run.
func (b *Binder) Bind(rec *record.Record) Vars {
	v := b.pool.Get().(Vars)
	u := b.uses
	if u&usesMsg != 0 {
		switch {
		case rec.Decoded:
			v["msg"] = rec.Msg
		case rec.Value != nil:
			v["msg"] = rec.Value
		default:
			v["msg"] = nil // a tombstone: a nil []byte in an interface would not be == nil
		}
	}
	if u&usesKey != 0 {
		v["key"] = bytesOrNil(rec.Key)
	}
	if u&usesHeaders != 0 {
		headers := make(map[string]any, len(rec.Headers))
		for _, h := range rec.Headers {
			headers[h.Key] = bytesOrNil(h.Value)
		}
		v["headers"] = headers
	}
	if u&usesTopic != 0 {
		v["topic"] = rec.Topic
	}
	if u&usesPartition != 0 {
		v["partition"] = int(rec.Partition)
	}
	if u&usesOffset != 0 {
		v["offset"] = int(rec.Offset)
	}
	if u&usesTimestamp != 0 {
		v["timestamp"] = rec.Timestamp
	}
	return v
}

// Release takes an environment back. It is emptied, so a program left out of the Binder
// finds nothing rather than another record's values.
func (b *Binder) Release(v Vars) {
	clear(v)
	b.pool.Put(v)
}

// bytesOrNil is a key or header value as expressions see it: a string, or nil when Kafka
// has null (an empty value is "").
func bytesOrNil(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
