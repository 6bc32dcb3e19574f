// Command aggref is the reference for proctest's aggregate crash test: it reads a feed of
// orders (JSON lines: order_id, customer_id, amount in cents, ts in Unix milliseconds, and the
// phase the test produced it in) and prints what a per-customer tumbling-window aggregate with
// the given grace must emit by the feed's end, and which orders it must reject as late. It is
// written from the aggregate's documented semantics alone, with nothing of the engine's code:
//
//   - a window [start, start+size) is closed once the stream time of the partition its key
//     is in has reached start+size+grace; a record all of whose windows are closed is late;
//   - the stream time is the latest event time the partition's records have brought.
//
// Which customers share a partition, and how the records of one phase interleave in it, the
// reference does not know, so it bounds the stream time instead. The test produces a phase only
// once every record of the phase before has been processed (its offsets committed), so when a
// record of phase k is processed its partition's stream time is at least L, the latest event
// time of its own customer's records in phases before k, and at most U, the latest event time
// of any record of phases up to k. A record is late when its window's end plus grace is at or
// below L, on time when above U; in between its fate would depend on timing, and the feed is
// refused (exit 1): the test's feed must make every outcome certain. Likewise, at the end, a
// window is emitted when its end plus grace is at or below its customer's last event time (its
// partition's final stream time is at least that) and open when above the feed's last.
//
// Output, one line each: "window CUSTOMER START_MS COUNT SUM" for every window emitted, and
// "late ORDER_ID" for every late order.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"
)

type order struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Amount     int64  `json:"amount"`
	TS         int64  `json:"ts"`
	Phase      int    `json:"phase"`
}

type window struct {
	customer string
	start    int64
}

func main() {
	size := flag.Duration("window", time.Minute, "the tumbling window's size")
	grace := flag.Duration("grace", 0, "the aggregate's grace")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: aggref -window D -grace D FEED.jsonl")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), size.Milliseconds(), grace.Milliseconds(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "aggref:", err)
		os.Exit(1)
	}
}

// run reads the feed at path and writes what the aggregate must emit to w.
func run(path string, size, grace int64, w io.Writer) error {
	orders, err := read(path)
	if err != nil {
		return err
	}
	phases := 0
	for _, o := range orders {
		phases = max(phases, o.Phase+1)
	}
	// upTo[k]: the latest event time of phases 0..k; own[c][k]: customer c's latest in phase k.
	upTo := make([]int64, phases)
	for i := range upTo {
		upTo[i] = math.MinInt64
	}
	own := map[string][]int64{}
	last := map[string]int64{}
	for _, o := range orders {
		upTo[o.Phase] = max(upTo[o.Phase], o.TS)
		if own[o.CustomerID] == nil {
			own[o.CustomerID] = make([]int64, phases)
			for i := range own[o.CustomerID] {
				own[o.CustomerID][i] = math.MinInt64
			}
			last[o.CustomerID] = math.MinInt64
		}
		own[o.CustomerID][o.Phase] = max(own[o.CustomerID][o.Phase], o.TS)
		last[o.CustomerID] = max(last[o.CustomerID], o.TS)
	}
	for k := 1; k < phases; k++ {
		upTo[k] = max(upTo[k], upTo[k-1])
	}
	before := func(c string, k int) int64 { // L: c's latest event time in phases before k
		l := int64(math.MinInt64)
		for _, t := range own[c][:k] {
			l = max(l, t)
		}
		return l
	}

	type acc struct{ count, sum int64 }
	windows := map[window]*acc{}
	var late []string
	var unsure []string
	for _, o := range orders {
		start := floorDiv(o.TS, size) * size
		due := start + size + grace // the stream time that closes the record's window
		switch l, u := before(o.CustomerID, o.Phase), upTo[o.Phase]; {
		case l != math.MinInt64 && due <= l:
			late = append(late, o.OrderID)
		case due > u:
			w := window{o.CustomerID, start}
			if windows[w] == nil {
				windows[w] = &acc{}
			}
			windows[w].count++
			windows[w].sum += o.Amount
		default:
			unsure = append(unsure, fmt.Sprintf("order %s (phase %d, event time %d): late or not depends on timing", o.OrderID, o.Phase, o.TS))
		}
	}
	end := upTo[phases-1]
	var emitted []window
	for w := range windows {
		switch due := w.start + size + grace; {
		case due <= last[w.customer]:
			emitted = append(emitted, w)
		case due <= end:
			unsure = append(unsure, fmt.Sprintf("window %s@%d: closed by the end or not depends on its partition", w.customer, w.start))
		}
	}
	if len(unsure) > 0 {
		return fmt.Errorf("%d outcomes depend on timing, the first: %s", len(unsure), unsure[0])
	}
	sort.Slice(emitted, func(i, j int) bool {
		if emitted[i].customer != emitted[j].customer {
			return emitted[i].customer < emitted[j].customer
		}
		return emitted[i].start < emitted[j].start
	})
	out := bufio.NewWriter(w)
	for _, w := range emitted {
		fmt.Fprintf(out, "window %s %d %d %d\n", w.customer, w.start, windows[w].count, windows[w].sum)
	}
	for _, id := range late {
		fmt.Fprintf(out, "late %s\n", id)
	}
	return out.Flush()
}

func read(path string) ([]order, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var orders []order
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var o order
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if o.OrderID == "" || o.CustomerID == "" || o.Phase < 0 {
			return nil, fmt.Errorf("%s:%d: an order needs order_id, customer_id and a phase ≥ 0", path, line)
		}
		orders = append(orders, o)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(orders) == 0 {
		return nil, fmt.Errorf("%s: no orders", path)
	}
	return orders, nil
}

// floorDiv rounds towards minus infinity, so that a time before 1970 falls in its window.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
