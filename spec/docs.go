package spec

import (
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown writes a table of fields — name, kind, default, doc — and, below it, a table
// for each nested object, titled by its path under title.
func WriteMarkdown(w io.Writer, title string, fields []Field) {
	fmt.Fprintf(w, "| field | type | default | description |\n|---|---|---|---|\n")
	var nested []Field
	for _, f := range fields {
		def := ""
		switch {
		case f.Required:
			def = "**required**"
		case f.Default != "":
			def = "`" + f.Default + "`"
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", f.Name, kindDoc(f), def, strings.ReplaceAll(f.Doc, "|", `\|`))
		if f.Kind == KindObject {
			nested = append(nested, f)
		}
		if (f.Kind == KindList || f.Kind == KindMap) && f.Elem.Kind == KindObject {
			e := *f.Elem
			e.Name = f.Name + "[]"
			nested = append(nested, e)
		}
	}
	for _, f := range nested {
		path := f.Name
		if title != "" {
			path = title + "." + f.Name
		}
		fmt.Fprintf(w, "\n`%s`: %s\n\n", path, f.Doc)
		WriteMarkdown(w, path, f.Fields)
	}
}

func kindDoc(f Field) string {
	switch f.Kind {
	case KindEnum:
		return strings.Join(f.Values, " \\| ")
	case KindExpr:
		return "expression → " + f.ExprResult
	case KindList:
		return "list of " + kindDoc(*f.Elem)
	case KindMap:
		return "map of " + kindDoc(*f.Elem)
	case KindRaw:
		return f.Name
	}
	return f.Kind.String()
}

// JSONSchema describes a field as a JSON Schema (draft 2020-12) fragment.
func JSONSchema(f Field) map[string]any {
	s := map[string]any{}
	if f.Doc != "" {
		s["description"] = f.Doc
	}
	switch f.Kind {
	case KindString, KindExpr:
		s["type"] = "string"
	case KindInt:
		s["type"] = "integer"
	case KindFloat:
		s["type"] = "number"
	case KindBool:
		s["type"] = "boolean"
	case KindDuration:
		s["type"] = "string"
		s["pattern"] = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	case KindSize:
		s["type"] = []string{"integer", "string"}
	case KindEnum:
		s["enum"] = f.Values
	case KindStrings:
		s["anyOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}
	case KindList:
		s["type"] = "array"
		s["items"] = JSONSchema(*f.Elem)
	case KindMap:
		s["type"] = "object"
		s["additionalProperties"] = JSONSchema(*f.Elem)
	case KindObject:
		return ObjectSchema(f.Doc, f.Fields)
	}
	if f.Min != nil {
		s["minimum"] = *f.Min
	}
	if f.Max != nil {
		s["maximum"] = *f.Max
	}
	return s
}

// ObjectSchema describes a mapping with fixed fields; unknown keys are not allowed.
func ObjectSchema(doc string, fields []Field) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range fields {
		props[f.Name] = JSONSchema(f)
		if f.Required {
			required = append(required, f.Name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if doc != "" {
		s["description"] = doc
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// Example shows a type at work: a fragment of a pipeline file, its top-level keys (stages,
// sinks, dlq, source, registry) completed by a minimal pipeline for the keys it leaves out.
// Its relative paths are read from pipelines/. The reference prints it; a test validates it.
type Example struct {
	Title string
	YAML  string
}
