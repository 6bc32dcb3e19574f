package diag

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDiagnosticJSON(t *testing.T) {
	cases := []struct {
		name string
		d    Diagnostic
		want string
	}{
		{"an error", Diagnostic{Pos: Pos{File: "p.yaml", Line: 16, Col: 15}, Path: "stages[1].when", Msg: "unknown field ammount"},
			`{"severity":"error","file":"p.yaml","line":16,"col":15,"path":"stages[1].when","message":"unknown field ammount"}`},
		{"a warning, its message without warning:", Diagnostic{Pos: Pos{File: "p.yaml", Line: 3, Col: 9}, Path: "to", Msg: "x", Warning: true},
			`{"severity":"warning","file":"p.yaml","line":3,"col":9,"path":"to","message":"x"}`},
		{"a problem of the whole file: line, col and path empty", Diagnostic{Pos: Pos{File: "<stdin>"}, Msg: `a "b" <c> & d`},
			`{"severity":"error","file":"<stdin>","line":0,"col":0,"path":"","message":"a \"b\" <c> & d"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(c.d); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSuffix(b.String(), "\n"); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			var back Diagnostic
			if err := json.Unmarshal(b.Bytes(), &back); err != nil || back != c.d {
				t.Errorf("read back as %+v (%v), want %+v", back, err, c.d)
			}
		})
	}
}

func TestDiagnosticJSONRefusesAnUnknownSeverity(t *testing.T) {
	var d Diagnostic
	err := json.Unmarshal([]byte(`{"severity":"fatal","file":"f","message":"m"}`), &d)
	if err == nil || !strings.Contains(err.Error(), `severity "fatal" is not error or warning`) {
		t.Errorf("got %v", err)
	}
}

func TestReportJSON(t *testing.T) {
	cases := []struct {
		name string
		r    Report
		want string
	}{
		{"no diagnostics are an empty list", Report{OK: true, Files: []FileReport{{File: "a.yaml", OK: true}}},
			`{"ok":true,"files":[{"file":"a.yaml","ok":true,"diagnostics":[]}]}`},
		{"a test file: its pipeline and cases", Report{OK: true, Files: []FileReport{{File: "a.test.yaml", OK: true, Pipeline: "a.yaml", Cases: 3}}},
			`{"ok":true,"files":[{"file":"a.test.yaml","ok":true,"pipeline":"a.yaml","cases":3,"diagnostics":[]}]}`},
		{"diagnostics", Report{Files: []FileReport{{File: "b.yaml", Diagnostics: List{{Pos: Pos{File: "b.yaml", Line: 1, Col: 2}, Msg: "m"}}}}},
			`{"ok":false,"files":[{"file":"b.yaml","ok":false,"diagnostics":[{"severity":"error","file":"b.yaml","line":1,"col":2,"path":"","message":"m"}]}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.r)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.want {
				t.Errorf("got  %s\nwant %s", b, c.want)
			}
			var back Report
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if len(c.r.Files[0].Diagnostics) == 0 {
				c.r.Files[0].Diagnostics = List{}
			}
			if !reflect.DeepEqual(back, c.r) {
				t.Errorf("read back as %+v, want %+v", back, c.r)
			}
		})
	}
}
