package devbroker

import (
	"slices"
	"sort"
	"strconv"
)

// ByPartition sorts records by partition, then offset: each partition in the order a reader
// of it sees.
func ByPartition(recs []Record) {
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
}

// Inversions counts, in records sorted ByPartition, the records of a key out of source order
// (their seq header), among the first copy of each record or, with last, among the last
// copies. A record written again after later ones (a replay after a crash, a rewrite to keep
// order) is not out of order by its first copy if it came in order the first time, nor by its
// last if it came in order the last time.
func Inversions(recs []Record, last bool) int {
	type copyOf struct {
		key string
		seq int
	}
	var copies []copyOf
	seen := map[int]bool{}
	for i := range recs {
		r := recs[i]
		if last {
			r = recs[len(recs)-1-i]
		}
		seq, _ := strconv.Atoi(r.Headers["seq"])
		if !seen[seq] {
			seen[seq] = true
			copies = append(copies, copyOf{string(r.Key), seq})
		}
	}
	if last {
		slices.Reverse(copies)
	}
	highest := map[string]int{}
	n := 0
	for _, c := range copies {
		if h, ok := highest[c.key]; ok && c.seq < h {
			n++
			continue
		}
		highest[c.key] = c.seq
	}
	return n
}
