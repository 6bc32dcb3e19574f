package state

import (
	"context"
	"fmt"
)

// LogEnder is a Changelog written in transactions (delivery: exactly_once). Its End, the last
// stable offset, stops at the first transaction still open in the partition; one that a killed
// instance left open (until the broker aborts it, after its transaction_timeout) hides all
// that was committed after it began, such as the changes of the instance that took the
// partition over. A store restored only to End would miss those, and count, dedupe and emit
// again what they say was done. So a store is restored only once End has reached LogEnd: no
// transaction is open before what it reads.
type LogEnder interface {
	// LogEnd is the offset after the last record of partition, committed or not.
	LogEnd(ctx context.Context, partition int32) (int64, error)
}

// settledEnd is the end of partition's changelog, for a restore: under exactly-once, one that
// no open transaction holds back (LogEnder); while one does, a changelogError, waited out.
func (s *Stores) settledEnd(ctx context.Context, partition int32) (int64, error) {
	var logEnd int64
	le, ok := s.changelog.(LogEnder)
	ok = ok && s.opts.Transactional
	if ok {
		var err error
		if logEnd, err = le.LogEnd(ctx, partition); err != nil {
			return 0, &changelogError{fmt.Errorf("state: the log end of partition %d's changelog: %w", partition, err)}
		}
	}
	end, err := s.changelog.End(ctx, partition)
	if err != nil {
		return 0, &changelogError{fmt.Errorf("state: the end of partition %d's changelog: %w", partition, err)}
	}
	if ok && end < logEnd {
		return 0, &changelogError{fmt.Errorf("state: partition %d's changelog has a transaction open (committed up to offset %d, written up to %d), which may hide changes committed after it; the store is restored once it ends (a killed instance's is aborted by the broker after its transaction_timeout)", partition, end, logEnd)}
	}
	return end, nil
}
