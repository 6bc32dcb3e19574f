package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// envInt is the integer in the environment variable name, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// partitions is the partition count of the benchmark's topics; BENCH_PARTITIONS overrides it.
func partitions() int32 { return int32(envInt("BENCH_PARTITIONS", 8)) }

// recordBytes is the size of the benchmark's record values; BENCH_RECORD_BYTES overrides it.
func recordBytes() int { return envInt("BENCH_RECORD_BYTES", 200) }

// note is n letters that compress about as well as text: not a run of one letter, which
// would make the backlog's compressed batches hold many times more records than real ones.
func note(seed, n int) string {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = "etaoinshrdlu     "[x%17]
	}
	return string(b)
}

// ordersFeed is records from..to-1 of the benchmark's backlog: the orders example's mix (a
// tenth bad JSON, a tenth filtered out, a tenth big orders, the rest ordinary; see
// devbroker.OrdersFate) with each value padded by its note to size bytes, keyed by 10,007
// customers so that partitions get even shares.
func ordersFeed(from, to, size int) []devbroker.Record {
	recs := make([]devbroker.Record, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		customer := fmt.Sprintf("c%d", i%10007)
		var body string
		switch i % 10 {
		case 0:
			body = fmt.Sprintf(`{"order_id":"o%d","amount": }`, i)
		case 1:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"%s","amount":0,"region":"eu"}`, i, customer)
		case 2:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"%s","amount":1500.5,"region":"us","note":"%%s"}`, i, customer)
		default:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"%s","amount":%d.5,"region":"eu","note":"%%s"}`, i, customer, i%999)
		}
		if strings.Contains(body, "%s") {
			body = fmt.Sprintf(body, note(i, max(size-len(body)+2, 1)))
		}
		recs = append(recs, devbroker.Record{Key: []byte(customer), Value: []byte(body),
			Headers: map[string]string{"seq": strconv.Itoa(i)}, Timestamp: time.UnixMilli(1700000000000 + int64(i))})
	}
	return recs
}
