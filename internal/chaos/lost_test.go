//go:build chaos

package chaos

import (
	"context"
	bin "encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// whereLost says, of records lost to a read_committed reader, where a read_uncommitted one
// finds them: by partition, the offsets they hold and the marker that ended their
// transaction (a record committed past by its offsets but aborted is exactly-once's loss).
func (r *run) whereLost(ctx context.Context, missing []int) string {
	lost := map[int]bool{}
	byTopic := map[string]bool{}
	for _, seq := range missing {
		lost[seq] = true
		byTopic[r.topic(devbroker.OrdersFate(seq))] = true
	}
	var out []string
	for topic := range byTopic {
		offsets := map[int32]kgo.Offset{}
		want := r.w.b.EndOffsets(topic)
		for p := range want {
			offsets[p] = kgo.NewOffset().AtStart()
		}
		cl, err := r.w.b.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.KeepControlRecords())
		if err != nil {
			return err.Error()
		}
		type span struct {
			n           int
			first, last int64
			marker      string // the first marker after the last of them
		}
		found := map[int32]*span{}
		for p, end := range want {
			if end == 0 {
				delete(want, p)
			}
		}
		for len(want) > 0 && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
				end, ok := want[rec.Partition]
				if !ok || rec.Offset >= end {
					return
				}
				if rec.Offset+1 >= end {
					delete(want, rec.Partition)
				}
				s := found[rec.Partition]
				if rec.Attrs.IsControl() {
					if s != nil && s.marker == "" && len(rec.Key) >= 4 {
						s.marker = map[uint16]string{0: "abort", 1: "commit"}[bin.BigEndian.Uint16(rec.Key[2:])] + " at " + strconv.FormatInt(rec.Offset, 10)
					}
					return
				}
				for _, h := range rec.Headers {
					if seq, err := strconv.Atoi(string(h.Value)); h.Key == "seq" && err == nil && lost[seq] {
						if s == nil {
							s = &span{first: rec.Offset}
							found[rec.Partition] = s
						}
						s.n++
						s.last, s.marker = rec.Offset, ""
					}
				}
			})
		}
		cl.Close()
		parts := make([]int, 0, len(found))
		for p := range found {
			parts = append(parts, int(p))
		}
		sort.Ints(parts)
		for _, p := range parts {
			s := found[int32(p)]
			out = append(out, fmt.Sprintf("%s/%d: %d of them uncommitted at offsets %d-%d, then %s", topic, p, s.n, s.first, s.last, s.marker))
		}
	}
	if len(out) == 0 {
		return "none of them is in the topics, even uncommitted"
	}
	return strings.Join(out, "; ")
}
