package pipetest

import (
	"encoding/xml"
	"io"
	"strings"
)

// Suite is one test file's results, for a JUnit report.
type Suite struct {
	File    string
	Results []Result
	Err     error // the file or its pipeline did not load
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the suites as a JUnit XML report, which CI systems show per case.
func WriteJUnit(w io.Writer, suites []Suite) error {
	var out junitSuites
	for _, s := range suites {
		js := junitSuite{Name: s.File}
		if s.Err != nil {
			js.Tests, js.Errors = 1, 1
			js.Cases = append(js.Cases, junitCase{Name: "load", Classname: s.File, Error: &junitFailure{Message: "does not load", Text: s.Err.Error()}})
		}
		for _, r := range s.Results {
			jc := junitCase{Name: r.Case.Name, Classname: s.File, Time: r.Took.Seconds()}
			js.Tests++
			js.Time += jc.Time
			if len(r.Failures) > 0 {
				js.Failures++
				first, _, _ := strings.Cut(r.Failures[0], "\n")
				jc.Failure = &junitFailure{Message: first, Text: strings.Join(r.Failures, "\n")}
			}
			js.Cases = append(js.Cases, jc)
		}
		out.Suites = append(out.Suites, js)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
