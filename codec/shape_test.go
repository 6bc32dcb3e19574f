package codec

import (
	"fmt"
	"time"

	"github.com/pythia-pipe/pythia-pipe/expr"
)

// checkShape says where v is not exactly of the Go type its shape promises expressions.
func checkShape(s *expr.Schema, v any) error { return check(s, v, "body") }

func check(s *expr.Schema, v any, path string) error {
	if v == nil {
		if s.Optional || s.Kind == expr.Any {
			return nil
		}
		return fmt.Errorf("%s: null where %s is not optional", path, s)
	}
	ok := true
	switch s.Kind {
	case expr.String:
		_, ok = v.(string)
	case expr.Int:
		_, ok = v.(int)
	case expr.Float:
		_, ok = v.(float64)
	case expr.Bool:
		_, ok = v.(bool)
	case expr.Time:
		_, ok = v.(time.Time)
	case expr.Bytes:
		_, ok = v.([]byte)
	case expr.List:
		xs, isList := v.([]any)
		ok = isList
		for i, x := range xs {
			if err := check(s.Elem, x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case expr.Object:
		m, isMap := v.(map[string]any)
		ok = isMap
		for k, x := range m {
			f, named := s.Fields[k]
			if !named {
				f = s.Open
			}
			if f == nil {
				return fmt.Errorf("%s.%s: not in the shape", path, k)
			}
			if err := check(f, x, path+"."+k); err != nil {
				return err
			}
		}
		for k, f := range s.Fields {
			if _, there := m[k]; !there && !f.Optional {
				return fmt.Errorf("%s.%s: missing", path, k)
			}
		}
	}
	if !ok {
		return fmt.Errorf("%s: %T where the shape says %s", path, v, s)
	}
	return nil
}
