package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// expectations are dev's --expect: how many records each sink, the DLQ and the stages'
// drops must come to, in the order given.
type expectations []expectation

type expectation struct {
	name string
	n    int64
}

func (e *expectations) String() string {
	if e == nil {
		return ""
	}
	parts := make([]string, len(*e))
	for i, x := range *e {
		parts[i] = fmt.Sprintf("%s=%d", x.name, x.n)
	}
	return strings.Join(parts, ",")
}

// Set adds NAME=N,...; the flag may be given more than once.
func (e *expectations) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		name, num, ok := strings.Cut(part, "=")
		name, num = strings.TrimSpace(name), strings.TrimSpace(num)
		if !ok || name == "" {
			return fmt.Errorf("%q is not NAME=N (e.g. out=9,dlq=0)", part)
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%s=%s: N is a whole number of records, 0 or more", name, num)
		}
		for _, x := range *e {
			if x.name == name {
				return fmt.Errorf("%s is expected twice", name)
			}
		}
		*e = append(*e, expectation{name, n})
	}
	return nil
}

// countNames are the names --expect takes for p, as dev's summary counts them: each sink's,
// dlq when there is one, and dropped (the records stages dropped) unless a sink has the name.
func countNames(p *pipeline.Pipeline) []string {
	var names []string
	taken := map[string]bool{}
	for _, s := range p.Sinks {
		names = append(names, s.Name)
		taken[s.Name] = true
	}
	if p.DLQ != nil {
		names = append(names, "dlq")
	}
	if !taken["dropped"] {
		names = append(names, "dropped")
	}
	return names
}

// unknown is the error of expectations naming what p does not count, or nil.
func (e expectations) unknown(p *pipeline.Pipeline) error {
	names := countNames(p)
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	for _, x := range e {
		if !known[x.name] {
			return fmt.Errorf("--expect: %s has no %q to count%s; the names are %s", p.Name, x.name, diag.DidYouMean(x.name, names), strings.Join(names, ", "))
		}
	}
	return nil
}

// check compares the counts with the expectations, says how they came out, and reports
// whether every one was met.
func (e expectations) check(w io.Writer, counts map[string]int64) bool {
	var wrong []string
	var got []string
	for _, x := range e {
		got = append(got, fmt.Sprintf("%s=%d", x.name, counts[x.name]))
		if counts[x.name] != x.n {
			wrong = append(wrong, fmt.Sprintf("  %-16s expected %d, got %d", x.name, x.n, counts[x.name]))
		}
	}
	if len(wrong) == 0 {
		fmt.Fprintf(w, "\nexpect: met (%s)\n", strings.Join(got, ", "))
		return true
	}
	fmt.Fprintf(w, "\nexpect: %d of %d count(s) differ\n%s\n", len(wrong), len(e), strings.Join(wrong, "\n"))
	return false
}
