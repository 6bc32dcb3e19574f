package kafkaio

import (
	"errors"
	"testing"
)

// A transaction keeps its first failed write, ends once however often it is asked, and runs
// what waits for its commit only when it commits.
func TestTransaction(t *testing.T) {
	cases := []struct {
		name      string
		fail      []error
		end       int
		commit    bool
		failure   error
		ended     bool
		afterDone int
	}{
		{name: "open"},
		{name: "a failed write is kept, the first one", fail: []error{errA, errB}, failure: errA},
		{name: "ended twice", end: 2, ended: true},
		{name: "committed", end: 1, commit: true, ended: true, afterDone: 1},
		{name: "aborted", end: 1, ended: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := newTransaction(0)
			done := 0
			x.AfterCommit(func() { done++ })
			for _, err := range c.fail {
				x.Fail(err)
			}
			for range c.end {
				x.end()
			}
			if c.commit {
				x.committed()
			}
			if got := x.Failure(); !errors.Is(got, c.failure) || (got == nil) != (c.failure == nil) {
				t.Errorf("failure %v, want %v", got, c.failure)
			}
			if x.Ended() != c.ended || isClosed(x.Over()) != c.ended {
				t.Errorf("ended %v, over closed %v; want %v", x.Ended(), isClosed(x.Over()), c.ended)
			}
			if c.failure != nil && x.ctx.Err() == nil {
				t.Error("a failed write leaves the transaction's writes running")
			}
			if done != c.afterDone {
				t.Errorf("ran %d times what waits for the commit, want %d", done, c.afterDone)
			}
		})
	}
}

var errA, errB = errors.New("a"), errors.New("b")

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
