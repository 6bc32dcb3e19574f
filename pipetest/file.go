// Package pipetest runs a pipeline's test file: cases of input records and the records each
// sink and the DLQ must receive, in memory, with no broker (`pythia-pipe test`).
package pipetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// File is a test file: the pipeline it tests and its cases.
type File struct {
	Path     string
	Pipeline string            // the pipeline file, resolved against the test file's folder
	Env      map[string]string // ${VAR} values, over the process's environment
	Mocks    []Mock            // HTTP answers for every case, after the case's own
	// Tables are the records of table topics (enrich's table), by topic, for every case: a
	// topic not named is an empty table.
	Tables map[string][]TableRecord
	Cases  []Case
}

// TableRecord is a record of a table topic: its key and value (nil: a tombstone).
type TableRecord struct {
	Key, Value []byte
	Written    bool // Value was given as a mapping or list (JSON), not as a string
}

// Case is input records and what the pipeline must do with them.
type Case struct {
	Name    string
	Line    int
	Input   []Input
	Expect  map[string][]Expected // by sink name, "dlq" for the DLQ; a sink not named receives nothing
	Dropped *int                  // inputs that reach no sink and not the DLQ
	Stops   string                // the pipeline must stop with an error saying this
	Mocks   []Mock
}

// Input is one record fed to the source.
type Input struct {
	Key       []byte // nil: a null key
	Value     []byte // nil: a null value (a tombstone)
	Written   bool   // Value was given as a mapping or list (JSON), not as a string
	Headers   map[string]string
	Timestamp time.Time
}

// Expected is a record a sink must receive. Only what it names is compared: a value given as
// a mapping matches the fields it lists (recursively; lists and scalars whole), unless Exact.
type Expected struct {
	Line    int
	Key     *[]byte // nil: not compared; a pointer to nil: a null key
	Value   *yaml.Node
	Exact   bool
	Headers map[string]string
	Topic   string // for a topic_expr
	Reason  string // the DLQ: text in pythia.error
	Stage   string // the DLQ: pythia.stage
}

type rawFile struct {
	Pipeline string                `yaml:"pipeline"`
	Env      map[string]string     `yaml:"env"`
	Mocks    []rawMock             `yaml:"mocks"`
	Tables   map[string][]rawInput `yaml:"tables"`
	Cases    []rawCase             `yaml:"cases"`
}

type rawCase struct {
	Name    string                   `yaml:"name"`
	Input   []rawInput               `yaml:"input"`
	Expect  map[string][]rawExpected `yaml:"expect"`
	Dropped *int                     `yaml:"dropped"`
	Stops   string                   `yaml:"stops"`
	Mocks   []rawMock                `yaml:"mocks"`
}

type rawInput struct {
	Key       yaml.Node         `yaml:"key"`
	Value     yaml.Node         `yaml:"value"`
	Headers   map[string]string `yaml:"headers"`
	Timestamp string            `yaml:"timestamp"`
}

type rawExpected struct {
	Key     yaml.Node         `yaml:"key"`
	Value   yaml.Node         `yaml:"value"`
	Exact   bool              `yaml:"exact"`
	Headers map[string]string `yaml:"headers"`
	Topic   string            `yaml:"topic"`
	Reason  string            `yaml:"reason"`
	Stage   string            `yaml:"stage"`
}

// notFound is yaml.v3's word for an unknown field, which names our types.
var notFound = regexp.MustCompile(`field (\S+) not found in type \S+`)

// Load reads the test file at path. Its pipeline is `pipeline:`, or by default the file of the
// same name without .test (orders.test.yaml tests orders.yaml).
func Load(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, yamlProblems(path, err)
	}
	var raw rawFile
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, yamlProblems(path, err)
	}
	f := &File{Path: path, Env: raw.Env, Pipeline: raw.Pipeline}
	if f.Pipeline == "" {
		f.Pipeline = strings.Replace(filepath.Base(path), ".test.", ".", 1)
		if f.Pipeline == filepath.Base(path) {
			return nil, &Problem{File: path, Msg: "name the pipeline it tests (pipeline: FILE), or call the test file NAME.test.yaml"}
		}
	}
	if !filepath.IsAbs(f.Pipeline) {
		f.Pipeline = filepath.Join(filepath.Dir(path), f.Pipeline)
	}
	for i, rm := range raw.Mocks {
		m, err := rm.build()
		if err != nil {
			return nil, &Problem{File: path, Line: itemLine(&doc, "mocks", i), Msg: fmt.Sprintf("mocks[%d]: %v", i, err)}
		}
		f.Mocks = append(f.Mocks, m)
	}
	for topic, recs := range raw.Tables {
		if f.Tables == nil {
			f.Tables = map[string][]TableRecord{}
		}
		for i, ri := range recs {
			in, err := ri.build()
			if err == nil && in.Key == nil {
				err = errors.New("a table record needs a key")
			}
			if err != nil {
				line := 0
				if len(doc.Content) > 0 {
					if l := child(child(doc.Content[0], "tables"), topic); l != nil && l.Kind == yaml.SequenceNode && i < len(l.Content) {
						line = l.Content[i].Line
					}
				}
				return nil, &Problem{File: path, Line: line, Msg: fmt.Sprintf("tables.%s[%d]: %v", topic, i, err)}
			}
			f.Tables[topic] = append(f.Tables[topic], TableRecord{Key: in.Key, Value: in.Value, Written: in.Written})
		}
	}
	nodes := caseNodes(&doc)
	if len(raw.Cases) == 0 {
		return nil, &Problem{File: path, Msg: "no cases"}
	}
	var problems []error
	for i, rc := range raw.Cases {
		node := &yaml.Node{}
		if i < len(nodes) {
			node = nodes[i]
		}
		c, err := rc.build(node)
		if err != nil {
			problems = append(problems, &Problem{File: path, Line: node.Line, Msg: fmt.Sprintf("case %q: %v", rc.Name, err)})
			continue
		}
		f.Cases = append(f.Cases, c)
	}
	return f, errors.Join(problems...)
}

// caseNodes are the cases as YAML, for the lines messages name.
func caseNodes(doc *yaml.Node) []*yaml.Node {
	if len(doc.Content) == 0 {
		return nil
	}
	if cases := child(doc.Content[0], "cases"); cases != nil && cases.Kind == yaml.SequenceNode {
		return cases.Content
	}
	return nil
}

// itemLine is the line of item i of the top-level list key, 0 when there is none.
func itemLine(doc *yaml.Node, key string, i int) int {
	if len(doc.Content) == 0 {
		return 0
	}
	if l := child(doc.Content[0], key); l != nil && l.Kind == yaml.SequenceNode && i < len(l.Content) {
		return l.Content[i].Line
	}
	return 0
}

// child is the value of key in mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func (rc rawCase) build(node *yaml.Node) (Case, error) {
	c := Case{Name: rc.Name, Line: node.Line, Dropped: rc.Dropped, Stops: rc.Stops, Expect: map[string][]Expected{}}
	if c.Name == "" {
		return c, errors.New("every case needs a name")
	}
	if len(rc.Input) == 0 {
		return c, errors.New("no input records")
	}
	for i, rm := range rc.Mocks {
		m, err := rm.build()
		if err != nil {
			return c, fmt.Errorf("mocks[%d]: %v", i, err)
		}
		c.Mocks = append(c.Mocks, m)
	}
	for i, ri := range rc.Input {
		in, err := ri.build()
		if err != nil {
			return c, fmt.Errorf("input %d: %v", i+1, err)
		}
		c.Input = append(c.Input, in)
	}
	for sink, list := range rc.Expect {
		c.Expect[sink] = []Expected{}
		items := child(child(node, "expect"), sink)
		for j, re := range list {
			e := Expected{Exact: re.Exact, Headers: re.Headers, Topic: re.Topic, Reason: re.Reason, Stage: re.Stage}
			if items != nil && j < len(items.Content) {
				e.Line = items.Content[j].Line
			}
			if re.Key.Kind != 0 {
				k := scalarBytes(&re.Key)
				e.Key = &k
			}
			if re.Value.Kind != 0 {
				v := re.Value
				e.Value = &v
			}
			c.Expect[sink] = append(c.Expect[sink], e)
		}
	}
	return c, nil
}

func (ri rawInput) build() (Input, error) {
	in := Input{Headers: ri.Headers, Key: scalarBytes(&ri.Key)}
	if ri.Value.Kind == 0 {
		return in, errors.New("value is missing (null for a tombstone)")
	}
	v, err := bodyOf(&ri.Value)
	if err != nil {
		return in, err
	}
	in.Value = v
	in.Written = ri.Value.Kind == yaml.MappingNode || ri.Value.Kind == yaml.SequenceNode
	if ri.Timestamp != "" {
		t, err := time.Parse(time.RFC3339Nano, ri.Timestamp)
		if err != nil {
			return in, fmt.Errorf("timestamp: %v (RFC 3339, e.g. 2026-11-26T10:00:00Z)", err)
		}
		in.Timestamp = t
	}
	return in, nil
}

// scalarBytes is a key as written: nil for null or absent.
func scalarBytes(n *yaml.Node) []byte {
	if n.Kind == 0 || n.Tag == "!!null" {
		return nil
	}
	return []byte(n.Value)
}

// bodyOf is a record body from YAML: a mapping or list as JSON, a string as its text, null as
// no value (a tombstone), a number or boolean as its JSON.
func bodyOf(n *yaml.Node) ([]byte, error) {
	if n.Kind == yaml.ScalarNode {
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!str":
			return []byte(n.Value), nil
		}
	}
	var b bytes.Buffer
	if err := writeJSON(&b, n); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
