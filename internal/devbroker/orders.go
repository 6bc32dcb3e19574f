package devbroker

import (
	"fmt"
	"time"
)

// OrdersFeed makes n records for the orders example (pipelines/orders.yaml), each with a
// "seq" header holding its index and a key among 97 customers. By index modulo 10: 0 is bad
// JSON (for the DLQ), 1 has amount 0 (filtered out), 2 is big (amount ≥ 1000), the rest go
// to `out`.
func OrdersFeed(n int) []Record { return OrdersFeedRange(0, n) }

// OrdersFeedRange makes the records from..to-1 of the feed, for tests that feed in parts.
func OrdersFeedRange(from, to int) []Record {
	recs := make([]Record, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		var body string
		switch i % 10 {
		case 0:
			body = fmt.Sprintf(`{"order_id": "o%d", "amount": }`, i)
		case 1:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"c%d","amount":0,"region":"eu"}`, i, i%97)
		case 2:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"c%d","amount":1500.5,"region":"us"}`, i, i%97)
		default:
			body = fmt.Sprintf(`{"order_id":"o%d","customer_id":"c%d","amount":%d.5,"region":"eu","note":"n%d"}`, i, i%97, i%999, i)
		}
		recs = append(recs, Record{Key: []byte(fmt.Sprintf("c%d", i%97)), Value: []byte(body),
			Headers: map[string]string{"seq": fmt.Sprint(i)}, Timestamp: time.UnixMilli(1700000000000 + int64(i))})
	}
	return recs
}

// OrdersFate says where record seq of OrdersFeed must end: "dlq", "dropped", "big" or "out".
func OrdersFate(seq int) string {
	return [...]string{"dlq", "dropped", "big", "out", "out", "out", "out", "out", "out", "out"}[seq%10]
}
