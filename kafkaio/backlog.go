package kafkaio

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Backlog is what a reader has to read of some topics, as they are at one moment: where each
// partition starts and where it ends for the reader's isolation level. tap and dlq replay read
// a backlog to its end and stop there.
//
// Its end is not "a record at end-1": offsets have gaps (transaction markers, compaction), and
// a read_committed reader is never given an aborted transaction's records. So a Reader keeps
// the markers and a partition is done when anything at end-1 or past it arrives.
type Backlog struct {
	ReadCommitted bool
	Start, End    map[string]map[int32]int64
}

// Backlog takes the backlog of topics now. A read_committed reader's end is each
// partition's last stable offset, where the first transaction still open begins (nothing of
// it can be read before it ends); a read_uncommitted reader's end is the high watermark.
func (a *Admin) Backlog(ctx context.Context, readCommitted bool, topics ...string) (*Backlog, error) {
	ends := a.adm.ListEndOffsets
	if readCommitted {
		ends = a.adm.ListCommittedOffsets
	}
	b := &Backlog{ReadCommitted: readCommitted}
	for _, l := range []struct {
		into *map[string]map[int32]int64
		list func(context.Context, ...string) (kadm.ListedOffsets, error)
	}{{&b.Start, a.adm.ListStartOffsets}, {&b.End, ends}} {
		listed, err := l.list(ctx, topics...)
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("listing the offsets of %s: %w", strings.Join(topics, ", "), err)
		}
		*l.into = map[string]map[int32]int64{}
		listed.Each(func(o kadm.ListedOffset) {
			if (*l.into)[o.Topic] == nil {
				(*l.into)[o.Topic] = map[int32]int64{}
			}
			(*l.into)[o.Topic][o.Partition] = o.Offset
		})
	}
	return b, nil
}

// consumeOpts are the options of a client reading the backlog: its isolation level, the
// transaction markers kept, for they may be all that stands at the end, and a short wait for
// data. A fetch that finds nothing waits that long at the broker, and the next fetch, for
// partitions that do have data (assigned since, or resumed), waits for it: with franz-go's
// 5 s a replay sometimes stalled 5 s in the middle of its backlog.
func (b *Backlog) consumeOpts() []kgo.Opt {
	level := kgo.ReadUncommitted()
	if b.ReadCommitted {
		level = kgo.ReadCommitted()
	}
	return []kgo.Opt{kgo.FetchIsolationLevel(level), kgo.KeepControlRecords(), kgo.FetchMaxWait(fetchWait)}
}

const fetchWait = 250 * time.Millisecond

// Place tells where m stands in the backlog (Reached at its partition's end).
func (b *Backlog) Place(m *Message) (in, last bool) {
	end, ok := b.End[m.Topic][m.Partition]
	if !ok {
		return false, false
	}
	return Reached(m, end)
}

// Reached tells where m stands against end, where the reading of its partition stops: in,
// when it lies before end; last, when the partition is read to end with it. A message past
// end is last too: it says that nothing before end is left to come (a read_committed
// reader is not given an aborted transaction's records, which may be what stood at end-1).
func Reached(m *Message, end int64) (in, last bool) {
	return m.Offset < end, m.Offset+1 >= end
}
