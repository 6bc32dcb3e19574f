package stages

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/expr"
	"github.com/pythia-pipe/pythia-pipe/record"
)

// table is a lookup file loaded into memory, keyed by one column. With a reload interval
// it is checked (at most that often, by the record that happens to look) and loaded again
// when its modification time changes; a file that no longer loads keeps the old table.
type table struct {
	path, format, keyColumn string
	reload                  time.Duration

	rows    atomic.Pointer[map[string]map[string]any]
	modTime atomic.Int64
	checked atomic.Int64 // unix nanoseconds of the last check
	mu      sync.Mutex   // one reload at a time
}

// TableError is a lookup file that cannot be used, with the line of the problem.
type TableError struct {
	File          string
	Line          int // 0 when the problem is the whole file
	Msg           string
	MissingColumn bool // the key column is absent: the key_column field is to blame
}

func (e *TableError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", filepath.Base(e.File), e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", filepath.Base(e.File), e.Msg)
}

func formatOf(path, format string) string {
	if format != "" {
		return format
	}
	ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	if ext == "yml" {
		ext = "yaml"
	}
	return ext
}

// loadTable reads the file; every problem (unreadable, malformed, no key column, a
// duplicate key) is a TableError naming the line.
func loadTable(path, format, keyColumn string, reload time.Duration) (*table, error) {
	t := &table{path: path, format: formatOf(path, format), keyColumn: keyColumn, reload: reload}
	if err := t.load(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *table) load() error {
	st, err := os.Stat(t.path)
	if err != nil {
		return &TableError{File: t.path, Msg: err.Error()}
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return &TableError{File: t.path, Msg: err.Error()}
	}
	rows, lines, columns, err := parseRows(t.path, t.format, data)
	if err != nil {
		return err
	}
	if columns != nil && !slices.Contains(columns, t.keyColumn) {
		return &TableError{File: t.path, Line: 1, MissingColumn: true,
			Msg: fmt.Sprintf("no %q column; the header has %s", t.keyColumn, strings.Join(columns, ", "))}
	}
	byKey := make(map[string]map[string]any, len(rows))
	firstLine := map[string]int{}
	for i, row := range rows {
		k, ok := row[t.keyColumn]
		if !ok || k == nil {
			return &TableError{File: t.path, Line: lines[i], Msg: fmt.Sprintf("no %q column in this row", t.keyColumn), MissingColumn: true}
		}
		key := fmt.Sprint(k)
		if first, dup := firstLine[key]; dup {
			return &TableError{File: t.path, Line: lines[i], Msg: fmt.Sprintf("duplicate key %q (first at line %d)", key, first)}
		}
		firstLine[key] = lines[i]
		byKey[key] = row
	}
	t.rows.Store(&byKey)
	t.modTime.Store(st.ModTime().UnixNano())
	t.checked.Store(time.Now().UnixNano())
	return nil
}

// parseRows reads the rows of a table, the line each starts on, and (for CSV) the columns.
func parseRows(path, format string, data []byte) (rows []map[string]any, lines []int, columns []string, _ error) {
	bad := func(line int, err error) ([]map[string]any, []int, []string, error) {
		return nil, nil, nil, &TableError{File: path, Line: line, Msg: err.Error()}
	}
	switch format {
	case "csv":
		r := csv.NewReader(bytes.NewReader(data))
		header, err := r.Read()
		if err != nil {
			return bad(1, fmt.Errorf("reading the header: %w", err))
		}
		columns = header
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			line, _ := r.FieldPos(0)
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					return bad(pe.Line, pe.Err)
				}
				return bad(line, err)
			}
			row := make(map[string]any, len(header))
			for i, h := range header {
				row[h] = rec[i]
			}
			rows, lines = append(rows, row), append(lines, line)
		}
	case "jsonl":
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for n := 1; sc.Scan(); n++ {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			v, err := record.DecodeJSON(sc.Bytes())
			if err != nil {
				return bad(n, fmt.Errorf("not a JSON object: %w", err))
			}
			row, ok := v.(map[string]any)
			if !ok {
				return bad(n, errors.New("not a JSON object"))
			}
			rows, lines = append(rows, row), append(lines, n)
		}
		if err := sc.Err(); err != nil {
			return bad(0, err)
		}
	case "json":
		v, err := record.DecodeJSON(data)
		if err != nil {
			line := 0
			var je *record.JSONError
			if errors.As(err, &je) {
				line = bytes.Count(data[:min(je.Offset, int64(len(data)))], []byte("\n")) + 1
			}
			return bad(line, fmt.Errorf("expected a JSON list of objects: %w", err))
		}
		list, ok := v.([]any)
		if !ok {
			return bad(1, errors.New("expected a JSON list of objects"))
		}
		for i, item := range list {
			row, ok := item.(map[string]any)
			if !ok {
				return bad(0, fmt.Errorf("expected a JSON list of objects, but item %d is not an object", i+1))
			}
			rows, lines = append(rows, row), append(lines, 0) // the decoder keeps no positions
		}
	case "yaml":
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return bad(0, err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.SequenceNode {
			return bad(1, errors.New("expected a YAML list of mappings"))
		}
		for _, item := range doc.Content[0].Content {
			var row map[string]any
			if err := item.Decode(&row); err != nil {
				return bad(item.Line, fmt.Errorf("expected a mapping: %w", err))
			}
			// YAML has .inf and .nan, which a JSON body cannot hold: found here, not by a sink.
			if where, what, found := unstorable(row); found {
				return bad(item.Line, fmt.Errorf("%s is %s, which a record body cannot hold", strings.TrimPrefix(where, "."), what))
			}
			rows, lines = append(rows, row), append(lines, item.Line)
		}
	default:
		return bad(0, fmt.Errorf("unknown table format %q", format))
	}
	return rows, lines, columns, nil
}

// lookup finds the row of key, reloading the file first when it is due and changed.
func (t *table) lookup(key string) (map[string]any, bool) {
	if t.reload > 0 {
		t.maybeReload()
	}
	row, ok := (*t.rows.Load())[key]
	return row, ok
}

func (t *table) maybeReload() {
	now := time.Now().UnixNano()
	last := t.checked.Load()
	if now-last < int64(t.reload) || !t.checked.CompareAndSwap(last, now) {
		return
	}
	st, err := os.Stat(t.path)
	if err != nil || st.ModTime().UnixNano() == t.modTime.Load() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_ = t.load() // a file that no longer loads keeps the old table until it is fixed
}

// schema is what a merge of a row puts into a body: each column with the type all its values
// share (string, int, bool or time; CSV columns are text), optional where a row lacks it or
// holds null. Any other mix, and fractional numbers, whose written form is kept, are any.
func (t *table) schema() *expr.Schema {
	rows := *t.rows.Load()
	s := &expr.Schema{Kind: expr.Object, Fields: map[string]*expr.Schema{}}
	seen := map[string]int{}
	for _, row := range rows {
		for col, v := range row {
			seen[col]++
			k := kindOfValue(v)
			f, ok := s.Fields[col]
			switch {
			case !ok:
				f = &expr.Schema{Kind: k}
				s.Fields[col] = f
			case k != nullKind && f.Kind == nullKind:
				f.Kind = k
			case k != nullKind && f.Kind != k:
				f.Kind = expr.Any
			}
			if v == nil {
				f.Optional = true
			}
		}
	}
	for col, f := range s.Fields {
		if seen[col] < len(rows) {
			f.Optional = true
		}
		if f.Kind == nullKind { // null in every row
			f.Kind = expr.Any
		}
	}
	return s
}

// nullKind is the kind of null, which takes the kind of its column's other values.
const nullKind expr.Kind = -1

// kindOfValue is the schema kind of a table value: Any when no kind says all of it.
func kindOfValue(v any) expr.Kind {
	switch v.(type) {
	case nil:
		return nullKind
	case string:
		return expr.String
	case int:
		return expr.Int
	case bool:
		return expr.Bool
	case time.Time:
		return expr.Time
	}
	return expr.Any
}
