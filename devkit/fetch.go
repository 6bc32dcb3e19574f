package devkit

import (
	"math"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// keepAbortedTransactions works around kfake (up to 2026-09-18) leaving a partition's
// aborted transactions out of a fetch response that its request's max_bytes cut short: the
// response then holds the records of those transactions, and a read_committed consumer
// reads them as committed (a store restored from its changelog counted an aborted
// transaction's changes). A cut by the partition's own max_bytes lists them: each fetch's
// max_bytes is raised to its partitions' sum, and room for one record batch as large as a
// topic takes by default, so that only a partition's limit cuts a response.
func keepAbortedTransactions(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.Fetch), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req, ok := r.(*kmsg.FetchRequest)
		if !ok {
			return nil, nil, false
		}
		var room int64 = batchRoom
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				room += int64(p.PartitionMaxBytes)
			}
		}
		if room > int64(req.MaxBytes) {
			req.MaxBytes = int32(min(room, math.MaxInt32))
		}
		return nil, nil, false // kfake answers the request as changed
	})
}

// batchRoom is the largest record batch a topic takes by default (max.message.bytes): the
// first batch of a response comes whatever its partition's max_bytes.
const batchRoom = 1 << 20
