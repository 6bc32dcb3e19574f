// Package spec describes configuration fields once — name, kind, default, one-line doc — and
// uses that description to parse YAML with positions, validate it, and generate the JSON
// schema and the reference documentation. Every stage, source and sink declares its fields here,
// and the numbers it keeps of its own (Counter), from which the metrics are made.
package spec

// Kind is the type of a field's value.
type Kind int

const (
	KindString   Kind = iota // any scalar, kept as text
	KindInt                  // a whole number
	KindFloat                // a number
	KindBool                 // true or false
	KindDuration             // Go duration text: 250ms, 5s, 1h30m
	KindSize                 // bytes: 1048576, 512KiB, 1MB
	KindEnum                 // one of Values (matched case-insensitively, kept canonical)
	KindExpr                 // an expression, compiled by whoever owns the field
	KindStrings              // one string or a list of strings
	KindList                 // a list of Elem
	KindMap                  // a mapping from names to Elem, order kept
	KindObject               // a mapping with the fixed Fields
	KindRaw                  // any YAML, interpreted by the owner (a decode schema, a nested stage)
)

var kindNames = [...]string{"string", "int", "float", "bool", "duration", "size", "enum", "expression",
	"string or list of strings", "list", "map", "object", "any"}

func (k Kind) String() string { return kindNames[k] }

// Field describes one configuration key. Build fields with the constructors below and refine
// them with the chainable methods; a Field is a value, so refining returns a copy.
type Field struct {
	Name       string
	Kind       Kind
	Doc        string
	Default    string   // YAML text used when the key is absent; "" means no default
	Required   bool     // absent is an error
	Values     []string // KindEnum: the allowed values
	Fields     []Field  // KindObject: the keys
	Elem       *Field   // KindList, KindMap: the element
	Min        *float64 // KindInt, KindFloat: inclusive lower bound
	Max        *float64 // KindInt, KindFloat: inclusive upper bound
	Secret     bool     // never echoed in messages
	CommaList  bool     // KindStrings: a scalar is split on commas
	NonEmpty   bool     // KindStrings, KindList, KindMap: at least one element
	ExprResult string   // KindExpr: what the expression computes, for the docs ("bool", "any", ...)
}

func String(name, doc string) Field { return Field{Name: name, Kind: KindString, Doc: doc} }
func Int(name, doc string) Field    { return Field{Name: name, Kind: KindInt, Doc: doc} }
func Float(name, doc string) Field  { return Field{Name: name, Kind: KindFloat, Doc: doc} }
func Bool(name, doc string) Field   { return Field{Name: name, Kind: KindBool, Doc: doc} }
func Duration(name, doc string) Field {
	return Field{Name: name, Kind: KindDuration, Doc: doc}
}
func Size(name, doc string) Field { return Field{Name: name, Kind: KindSize, Doc: doc} }
func Enum(name, doc string, values ...string) Field {
	return Field{Name: name, Kind: KindEnum, Doc: doc, Values: values}
}

// Expr is an expression field; result names what it must compute ("bool", "string", "any").
func Expr(name, result, doc string) Field {
	return Field{Name: name, Kind: KindExpr, Doc: doc, ExprResult: result}
}
func Strings(name, doc string) Field { return Field{Name: name, Kind: KindStrings, Doc: doc} }
func List(name, doc string, elem Field) Field {
	return Field{Name: name, Kind: KindList, Doc: doc, Elem: &elem}
}
func Map(name, doc string, elem Field) Field {
	return Field{Name: name, Kind: KindMap, Doc: doc, Elem: &elem}
}
func Object(name, doc string, fields ...Field) Field {
	return Field{Name: name, Kind: KindObject, Doc: doc, Fields: fields}
}
func Raw(name, doc string) Field { return Field{Name: name, Kind: KindRaw, Doc: doc} }

func (f Field) WithDefault(yamlText string) Field { f.Default = yamlText; return f }
func (f Field) Require() Field                    { f.Required = true; return f }
func (f Field) AtLeast(n float64) Field           { f.Min = &n; return f }
func (f Field) AtMost(n float64) Field            { f.Max = &n; return f }
func (f Field) Secrets() Field                    { f.Secret = true; return f }
func (f Field) Commas() Field                     { f.CommaList = true; return f }
func (f Field) NotEmpty() Field                   { f.NonEmpty = true; return f }

// Lookup finds the field named name among fields.
func Lookup(fields []Field, name string) (Field, bool) {
	for _, f := range fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Names lists the names of fields, for "did you mean" suggestions.
func Names(fields []Field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Name
	}
	return out
}
