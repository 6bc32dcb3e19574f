package txn

import (
	"errors"
	"testing"
)

// A Batch counts its records: Drained gets a token each time they are all done, Fail keeps
// the first failed write, and the end closes Over once however often it is asked.
func TestBatch(t *testing.T) {
	cases := []struct {
		name    string
		add     int
		settle  int
		fail    []error
		end     int
		pending int64
		drained bool
		failure error
		ended   bool
	}{
		{name: "records not done", add: 3, settle: 2, pending: 1},
		{name: "all done", add: 3, settle: 3, drained: true},
		{name: "a failed write is kept, the first one", add: 1, fail: []error{errA, errB}, pending: 1, failure: errA},
		{name: "ended twice", add: 1, settle: 1, end: 2, drained: true, ended: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBatch(0)
			b.Add(c.add)
			for range c.settle {
				b.Settle(0)
			}
			for _, err := range c.fail {
				b.Fail(err)
			}
			for range c.end {
				b.end()
			}
			if got := b.Pending(); got != c.pending {
				t.Errorf("pending %d, want %d", got, c.pending)
			}
			if got := len(b.Drained()) == 1; got != c.drained {
				t.Errorf("drained %v, want %v", got, c.drained)
			}
			if got := b.Failure(); !errors.Is(got, c.failure) || (got == nil) != (c.failure == nil) {
				t.Errorf("failure %v, want %v", got, c.failure)
			}
			if b.Ended() != c.ended || isClosed(b.Over()) != c.ended {
				t.Errorf("ended %v, over closed %v; want %v", b.Ended(), isClosed(b.Over()), c.ended)
			}
			if c.failure != nil && b.ctx.Err() == nil {
				t.Error("a failed write leaves the Batch's writes running")
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
