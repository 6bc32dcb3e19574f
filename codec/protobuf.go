package codec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/pythia-pipe/pythia-pipe/expr"
)

// ProtoFile is a compiled .proto file: its messages by name and by the indexes the wire
// format gives them.
type ProtoFile struct {
	text string
	fd   protoreflect.FileDescriptor
}

// Proto is one message type of a ProtoFile: what it decodes and encodes.
type Proto struct {
	md      protoreflect.MessageDescriptor
	indexes []int // its path in the file's declarations, for the wire format
}

// CompileProto compiles the .proto file named main among files (name → text: the file and
// those it imports; Google's well-known types are known without them).
func CompileProto(ctx context.Context, main string, files map[string]string) (*ProtoFile, error) {
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(files)})}
	fds, err := c.Compile(ctx, main)
	if err != nil {
		return nil, &SchemaError{Format: "protobuf", Err: err}
	}
	return &ProtoFile{text: files[main], fd: fds[0]}, nil
}

// Text is the file as it was compiled.
func (f *ProtoFile) Text() string { return f.text }

// Messages lists the file's message types, nested ones too, by full name, sorted.
func (f *ProtoFile) Messages() []string {
	var names []string
	var walk func(ms protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			if m := ms.Get(i); !m.IsMapEntry() {
				names = append(names, string(m.FullName()))
				walk(m.Messages())
			}
		}
	}
	walk(f.fd.Messages())
	sort.Strings(names)
	return names
}

// Message is the message type named name (its full name, or its name without the package);
// "" names the file's first message.
func (f *ProtoFile) Message(name string) (*Proto, error) {
	if name == "" {
		if f.fd.Messages().Len() == 0 {
			return nil, &SchemaError{Format: "protobuf", Err: errors.New("the file declares no message")}
		}
		return &Proto{md: f.fd.Messages().Get(0), indexes: []int{0}}, nil
	}
	full := protoreflect.FullName(name)
	if pkg := f.fd.Package(); pkg != "" && !strings.HasPrefix(name, string(pkg)+".") {
		full = pkg.Append(protoreflect.Name(name))
		if strings.Contains(name, ".") { // Outer.Inner without the package
			full = protoreflect.FullName(string(pkg) + "." + name)
		}
	}
	var found *Proto
	var walk func(ms protoreflect.MessageDescriptors, path []int)
	walk = func(ms protoreflect.MessageDescriptors, path []int) {
		for i := range ms.Len() {
			m := ms.Get(i)
			p := append(append([]int(nil), path...), i)
			if m.FullName() == full || m.FullName() == protoreflect.FullName(name) {
				found = &Proto{md: m, indexes: p}
				return
			}
			walk(m.Messages(), p)
		}
	}
	walk(f.fd.Messages(), nil)
	if found == nil {
		return nil, &SchemaError{Format: "protobuf", Err: fmt.Errorf("no message %s in the file (it has %s)", name, strings.Join(f.Messages(), ", "))}
	}
	return found, nil
}

// ByIndexes is the message type the wire format's indexes name.
func (f *ProtoFile) ByIndexes(indexes []int) (*Proto, error) {
	ms := f.fd.Messages()
	var m protoreflect.MessageDescriptor
	for _, i := range indexes {
		if i >= ms.Len() {
			return nil, &DataError{Format: "protobuf", Err: fmt.Errorf("the record's message indexes %v name no message of the schema", indexes)}
		}
		m = ms.Get(i)
		ms = m.Messages()
	}
	if m == nil {
		return nil, &DataError{Format: "protobuf", Err: errors.New("the record names no message")}
	}
	return &Proto{md: m, indexes: indexes}, nil
}

// Name is the message's full name.
func (p *Proto) Name() string { return string(p.md.FullName()) }

// Indexes are the message's indexes in its file, as the wire format writes them.
func (p *Proto) Indexes() []int { return p.indexes }

// Schema is the shape of the values Decode returns and Encode takes.
func (p *Proto) Schema() *expr.Schema { return messageShape(p.md, 0) }

// Decode reads one Protobuf body (the payload after the wire format's header and indexes).
func (p *Proto) Decode(payload []byte) (any, error) {
	m := dynamicpb.NewMessage(p.md)
	if err := proto.Unmarshal(payload, m); err != nil {
		return nil, &DataError{Format: "protobuf", Err: err}
	}
	return messageValue(m, "")
}

// Encode appends the Protobuf encoding of v to dst. A value that does not fit the message
// is an error naming the field.
func (p *Proto) Encode(dst []byte, v any) ([]byte, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &DataError{Format: "protobuf", Err: fmt.Errorf("a %s is written from an object, not %s", p.Name(), describe(v))}
	}
	m := dynamicpb.NewMessage(p.md)
	if err := setMessage(m, obj, ""); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(dst, m)
	if err != nil {
		return nil, &DataError{Format: "protobuf", Err: err}
	}
	return b, nil
}

// messageShape is a message as expr.Schema:
//
//	message → object (closed)     repeated → list     map<K, V> → object of V (keys as text)
//	int32, int64, uint32, uint64, sint*, fixed*, sfixed* → int    float, double → float
//	bool → bool    string, enum (its name) → string    bytes → bytes
//	google.protobuf.Timestamp → time    Duration → string ("1.5s")    wrappers → their value, optional
//	Struct → object of any    Value → any    ListValue → [any]
//
// A field with presence (a message, an optional scalar, a oneof member) is optional.
func messageShape(md protoreflect.MessageDescriptor, depth int) *expr.Schema {
	if s, ok := wellKnownShape(md); ok {
		return s
	}
	if depth > maxDepth {
		return &expr.Schema{Kind: expr.Any}
	}
	s := &expr.Schema{Kind: expr.Object, Fields: map[string]*expr.Schema{}}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		f := fieldShape(fd, depth)
		if fd.HasPresence() && !fd.IsList() && !fd.IsMap() {
			c := *f
			c.Optional = true
			f = &c
		}
		s.Fields[string(fd.Name())] = f
	}
	return s
}

func fieldShape(fd protoreflect.FieldDescriptor, depth int) *expr.Schema {
	switch {
	case fd.IsMap():
		return &expr.Schema{Kind: expr.Object, Fields: map[string]*expr.Schema{}, Open: kindShape(fd.MapValue(), depth)}
	case fd.IsList():
		return &expr.Schema{Kind: expr.List, Elem: kindShape(fd, depth)}
	}
	return kindShape(fd, depth)
}

func kindShape(fd protoreflect.FieldDescriptor, depth int) *expr.Schema {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return &expr.Schema{Kind: expr.Bool}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return &expr.Schema{Kind: expr.Float}
	case protoreflect.StringKind, protoreflect.EnumKind:
		return &expr.Schema{Kind: expr.String}
	case protoreflect.BytesKind:
		return &expr.Schema{Kind: expr.Bytes}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageShape(fd.Message(), depth+1)
	}
	return &expr.Schema{Kind: expr.Int}
}

// wellKnownShape is the shape of Google's well-known types that stand for a value.
func wellKnownShape(md protoreflect.MessageDescriptor) (*expr.Schema, bool) {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return &expr.Schema{Kind: expr.Time}, true
	case "google.protobuf.Duration":
		return &expr.Schema{Kind: expr.String}, true
	case "google.protobuf.Struct":
		return &expr.Schema{Kind: expr.Object, Fields: map[string]*expr.Schema{}, Open: &expr.Schema{Kind: expr.Any}}, true
	case "google.protobuf.Value":
		return &expr.Schema{Kind: expr.Any, Optional: true}, true
	case "google.protobuf.ListValue":
		return &expr.Schema{Kind: expr.List, Elem: &expr.Schema{Kind: expr.Any, Optional: true}}, true
	}
	if w, ok := wrapperKind(md); ok {
		return &expr.Schema{Kind: w, Optional: true}, true
	}
	return nil, false
}

// wrapperKind is the kind of the value a google.protobuf wrapper (Int64Value, ...) holds.
func wrapperKind(md protoreflect.MessageDescriptor) (expr.Kind, bool) {
	if md.ParentFile() == nil || md.ParentFile().Package() != "google.protobuf" || !strings.HasSuffix(string(md.Name()), "Value") {
		return 0, false
	}
	k, ok := map[protoreflect.Name]expr.Kind{"DoubleValue": expr.Float, "FloatValue": expr.Float, "Int64Value": expr.Int,
		"UInt64Value": expr.Int, "Int32Value": expr.Int, "UInt32Value": expr.Int, "BoolValue": expr.Bool,
		"StringValue": expr.String, "BytesValue": expr.Bytes}[md.Name()]
	return k, ok
}

// CompileProtoFile compiles the .proto file at path; its imports are read from its folder
// (Google's well-known types are known without them).
func CompileProtoFile(ctx context.Context, path string) (*ProtoFile, error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{dir}})}
	fds, err := c.Compile(ctx, name)
	if err != nil {
		return nil, &SchemaError{Format: "protobuf", Err: err}
	}
	text, _ := os.ReadFile(path) // #nosec G304 -- the pipeline file names it
	return &ProtoFile{text: string(text), fd: fds[0]}, nil
}
