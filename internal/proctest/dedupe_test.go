package proctest

import (
	"context"
	be "encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
)

// The dedupe crash test's names: its group, topics and the changelog the engine makes for
// its stage `once` (`<group>-<stage>-changelog`).
const (
	dedupeGroup     = "payments-once"
	dedupeIn        = "payments"
	dedupeOut       = "payments-once"
	dedupeChangelog = dedupeGroup + "-once-changelog"
)

// dedupePipeline is a payment feed deduplicated by payment id for an hour, its stores under
// ${STATE_DIR}; delivery is the file's delivery line ("" for the default, at_least_once) and
// source the source's timeouts.
func dedupePipeline(t testing.TB, delivery, source string) string {
	t.Helper()
	text := `version: 1
name: payments
` + delivery + `
kafka:
  brokers: ${KAFKA_BROKERS}
` + clientField + `

source:
  type: kafka
  topics: [` + dedupeIn + `]
  group: ` + dedupeGroup + `
  start: earliest
` + source + `

state:
  dir: ${STATE_DIR}

stages:
  - name: parse
    type: decode
    schema: {payment_id: string, amount: float}
  - name: once
    type: dedupe                  # by the record's key, the payment id: no repartition
    within: 1h

sinks:
  - name: out
    type: kafka
    topic: ` + dedupeOut + `
`
	path := filepath.Join(t.TempDir(), "payments.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// paymentFeed is n payments of which a fifth repeat the id of an earlier one: half of the
// repeats a few records after the id's first record, half anywhere after it (some far:
// thousands of records, across kills). Each record is keyed by its payment id, so that an
// id's records share a partition; its seq header is its place in the feed, its timestamp
// one millisecond per place (all of it within the dedupe's hour). first[id] is the seq of
// the id's first record, the one that must pass.
func paymentFeed(n int, rng *rand.Rand) (recs []devbroker.Record, first map[string]int) {
	distinct := n - n/5
	type entry struct {
		id    int
		place float64
	}
	entries := make([]entry, 0, n)
	for id := range distinct {
		entries = append(entries, entry{id, float64(id)})
	}
	for d := range n / 5 {
		id := rng.IntN(distinct)
		after := 1 + rng.Float64()*20 // near
		if d%2 == 1 {
			after = 0.5 + rng.Float64()*float64(distinct-id) // anywhere later
		}
		entries = append(entries, entry{id, float64(id) + after})
	}
	slices.SortStableFunc(entries, func(a, b entry) int {
		switch {
		case a.place < b.place:
			return -1
		case a.place > b.place:
			return 1
		}
		return 0
	})
	first = map[string]int{}
	base := time.UnixMilli(1_700_000_000_000)
	for seq, e := range entries {
		id := fmt.Sprintf("pay-%07d", e.id)
		if _, ok := first[id]; !ok {
			first[id] = seq
		}
		recs = append(recs, devbroker.Record{Key: []byte(id),
			Value:     []byte(fmt.Sprintf(`{"payment_id": %q, "amount": %d.25}`, id, seq)),
			Headers:   map[string]string{"seq": strconv.Itoa(seq)},
			Timestamp: base.Add(time.Duration(seq) * time.Millisecond)})
	}
	return recs, first
}

// Issue 28's "dedupe exactly once", as a process: a payment feed with a fifth of its ids
// repeated (some right after their first, some thousands of records later), three SIGKILLs
// at different points while the process works, a restart after each with the same state dir
// — but once with the state dir deleted, so that the stores are rebuilt from their
// changelogs alone, and that rebuild itself killed once as it begins — then a run to the
// end. Exactly-once: each id once, read_committed.
// At-least-once: each id at least once and only ever its first record (by its seq header:
// one source partition and offset), which a crash may write again, never a duplicate. In
// both: the changelog's last entry of each id names its first record's offset, and the
// group committed the end of the input. The restores are logged.
func TestDedupeCrash(t *testing.T) {
	// Commits every 50 ms: a kill waits for one of its run (see progressed), and on a real
	// Kafka a run at-least-once writes the whole feed's outputs in a few hundred.
	alo := `  session_timeout: 3s
  heartbeat_interval: 500ms
  rebalance_timeout: 30s
  drain_timeout: 15s
  commit_interval: 50ms
  max_pending: 2000`
	eos := `  session_timeout: 6s
  heartbeat_interval: 500ms
  rebalance_timeout: 30s
  transaction_timeout: 5s
  drain_timeout: 15s
  commit_interval: 200ms
  max_pending: 2000
  instance_id: payments-0`
	cases := []struct {
		name, delivery, source, client string
		exactlyOnce                    bool
	}{
		{name: "at_least_once", source: alo, client: "franz-go"},
		{name: "at_least_once_sarama", source: alo, client: "sarama"},
		{name: "exactly_once", delivery: "delivery: exactly_once\n", source: eos, client: "franz-go", exactlyOnce: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("KAFKA_CLIENT", c.client)
			dedupeCrash(t, dedupePipeline(t, c.delivery, c.source), c.exactlyOnce)
		})
	}
}

func dedupeCrash(t *testing.T, file string, exactlyOnce bool) {
	n := feedSize(t, "DEDUPE_RECORDS", 20_000)
	// Three kills while records are processed, the state dir deleted after the second; and
	// one more as the run after the deletion begins to rebuild a store (the third kill).
	const kills, deletedAfter, inRestore = 4, 2, 3
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 28))
	recs, first := paymentFeed(n, rng)
	distinct := len(first)
	t.Logf("feed: %d records, %d distinct payment ids, %d duplicates (seed %d)", n, distinct, n-distinct, seed)

	b := newBroker(t)
	for _, topic := range []string{dedupeIn, dedupeOut} {
		if err := b.CreateTopic(topic, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Produce(context.Background(), dedupeIn, recs); err != nil {
		t.Fatal(err)
	}
	// Where each record of the feed is: its partition and offset.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	in, err := b.Read(ctx, dedupeIn)
	if err != nil {
		t.Fatal(err)
	}
	where := make([]devbroker.Record, n)
	for _, r := range in {
		seq, err := strconv.Atoi(r.Headers["seq"])
		if err != nil {
			t.Fatalf("%s: a record without its seq header", dedupeIn)
		}
		where[seq] = r
	}

	stateDir := t.TempDir()
	env := []string{"STATE_DIR=" + stateDir}
	outputs := func() int64 {
		var n int64
		for _, end := range b.EndOffsets(dedupeOut) {
			n += end
		}
		return n
	}
	fed := func() int64 {
		var n int64
		for _, end := range b.EndOffsets(dedupeIn) {
			n += end
		}
		return n
	}
	committed := func() int64 {
		var n int64
		for _, o := range b.Committed(dedupeGroup, dedupeIn) {
			n += o
		}
		return n
	}
	var procs []*testproc.Proc
	began := time.Now()
	for k := 1; k <= kills; k++ {
		from := committed()
		p := startEnv(t, b, fmt.Sprintf("run %d", k), env, "run", file)
		procs = append(procs, p)
		// A different point each time: after a fifth, then a tenth, then (after the kill in
		// the restore) a quarter of the ids more come out (aborted transactions' records
		// counted).
		step := int64(distinct) * []int64{20, 10, 10, 25}[k-1] / 100
		target := outputs() + step
		// The kill inRestore comes as soon as a store's restore has begun (the run after the
		// state dir was deleted rebuilds what it opens), or after the progress.
		midRestore := func() bool {
			logs := p.Output()
			return k == inRestore && strings.Count(logs, `"msg":"restoring a store from its changelog"`) > strings.Count(logs, `"msg":"store restored"`)
		}
		// Progress is outputs and a commit of this run: a kill before any commit would leave
		// the changelog nothing of the run's under at-least-once (its changes follow the
		// outputs), and the next run nothing to restore. The feed left may hold fewer new ids
		// than the step (the runs before got further before their kills): half of it
		// committed is progress too, and leaves the rest for the runs after.
		halfLeft := from + (fed()-from)/2
		progressed := func() bool {
			c := committed()
			return (outputs() >= target || c >= halfLeft) && c > from
		}
		waitFor(t, 3*time.Minute, "progress before the kill", func() bool { return midRestore() || progressed() || !p.Running() })
		if midRestore() {
			t.Logf("kill %d while a store is restored", k)
		}
		if !p.Running() {
			t.Fatalf("pythia-pipe exited before it was killed")
		}
		if b.CaughtUp(dedupeGroup, dedupeIn) {
			t.Fatal("the feed was finished before the kill")
		}
		p.Signal(t, syscall.SIGKILL)
		p.Wait(t, 10*time.Second)
		t.Logf("kill %d at %d records written, %d of the feed not committed (committed %v)",
			k, outputs(), b.Unfinished(dedupeGroup, dedupeIn), b.Committed(dedupeGroup, dedupeIn))
		if k == deletedAfter {
			if err := os.RemoveAll(stateDir); err != nil {
				t.Fatal(err)
			}
			t.Logf("state dir deleted: the next run rebuilds the stores from %s alone", dedupeChangelog)
		}
	}
	last := startEnv(t, b, "final run", env, "run", file)
	procs = append(procs, last)
	waitFor(t, 5*time.Minute, "the final run to finish the feed", func() bool { return b.CaughtUp(dedupeGroup, dedupeIn) })
	last.Signal(t, syscall.SIGTERM)
	if code := last.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("the final run exited %d", code)
	}
	t.Logf("%d kills and a run to the end in %v", kills, time.Since(began).Round(time.Millisecond))

	// The restores, as each run after a kill logged them. A store is opened (and restored)
	// when its partition's first record reaches the stage, so the stores of the deleted state
	// dir are rebuilt by whichever run after the deletion reads their partitions first (a
	// store opened on an empty changelog logs no restore).
	var rebuilt []restoreLog // the restores after the deletion
	for i, p := range procs[1:] {
		for _, r := range logRestores(t, p) {
			if i+1 >= deletedAfter {
				rebuilt = append(rebuilt, r)
			}
			if r.Records < 0 && p == last {
				t.Errorf("%s: partition %d's restore began and never ended", p.Name, r.Partition)
			}
		}
	}
	var full int
	for _, r := range restores(t, procs[deletedAfter].Output()) {
		if r.From != 0 || r.Clean {
			t.Errorf("partition %d: its restore after the state dir was deleted read on from offset %d (clean %v), not the changelog's start", r.Partition, r.From, r.Clean)
		}
	}
	for _, r := range rebuilt {
		if r.From == 0 && !r.Clean && r.Records > 0 {
			full++
		}
	}
	if full == 0 {
		t.Errorf("no store was rebuilt from its changelog after the state dir was deleted: %+v", rebuilt)
	}

	verifyDedupe(t, b, where, first, exactlyOnce)
}

// verifyDedupe reads the output and the changelog (read_committed) and checks them against
// the feed: where[seq] is the feed's record seq as read back (its partition and offset),
// first[id] the seq of id's first record.
func verifyDedupe(t *testing.T, b *devbroker.Broker, where []devbroker.Record, first map[string]int, exactlyOnce bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, topic := range []string{dedupeOut, dedupeChangelog} {
		waitFor(t, 2*time.Minute, "no transaction open in "+topic, func() bool { return b.Stable(topic) })
	}
	out, err := b.Read(ctx, dedupeOut)
	if err != nil {
		t.Fatal(err)
	}
	copies := map[string]int{}
	var again, wrong int
	for _, r := range out {
		id := string(r.Key)
		seq, err := strconv.Atoi(r.Headers["seq"])
		if err != nil || seq < 0 || seq >= len(where) {
			t.Fatalf("%s: a record whose seq header is %q", dedupeOut, r.Headers["seq"])
		}
		src := where[seq]
		if string(src.Key) != id {
			t.Fatalf("%s: record of seq %d has key %q; the feed's has %q", dedupeOut, seq, id, src.Key)
		}
		var body struct {
			PaymentID string `json:"payment_id"`
		}
		if err := json.Unmarshal(r.Value, &body); err != nil || body.PaymentID != id {
			t.Fatalf("%s: %s keyed %q (%v)", dedupeOut, r.Value, id, err)
		}
		if f := first[id]; seq != f {
			if wrong++; wrong <= 10 {
				t.Errorf("%s passed from a duplicate: seq %d (partition %d offset %d); its first record is seq %d (partition %d offset %d)",
					id, seq, src.Partition, src.Offset, f, where[f].Partition, where[f].Offset)
			}
		}
		if copies[id]++; copies[id] == 2 {
			again++
		}
	}
	if wrong > 0 {
		t.Errorf("%d outputs came from duplicates, not from their id's first record", wrong)
	}
	var missing []string
	for id := range first {
		if copies[id] == 0 {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d payment ids never came out, the first %v", len(missing), len(first), missing[:min(10, len(missing))])
	}
	if exactlyOnce && again > 0 {
		t.Errorf("%d payment ids came out more than once (read_committed)", again)
	}
	extra := len(out) - len(copies)
	t.Logf("output: %d records, %d distinct ids of %d; %d ids written again (%d copies more), each time its first record", len(out), len(copies), len(first), again, extra)
	if exactlyOnce {
		all, err := b.CountUncommitted(ctx, dedupeOut)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d records of aborted transactions in %s, which read_committed skips", all-len(out), dedupeOut)
	}

	// The changelog: each id's last entry is its first record's time and offset, in that
	// record's partition.
	changes, err := b.Read(ctx, dedupeChangelog)
	if err != nil {
		t.Fatal(err)
	}
	latest := map[string]devbroker.Record{}
	for _, r := range changes {
		latest[string(r.Key)] = r
	}
	var bad int
	for id, f := range first {
		r, ok := latest[id]
		src := where[f]
		switch {
		case !ok || len(r.Value) != 16:
			bad++
			if bad <= 10 {
				t.Errorf("%s: the changelog's last entry of %s is %x (present: %v)", dedupeChangelog, id, r.Value, ok)
			}
		case r.Partition != src.Partition || int64(be.BigEndian.Uint64(r.Value[8:])) != src.Offset ||
			int64(be.BigEndian.Uint64(r.Value)) != src.Timestamp.UnixMilli():
			bad++
			if bad <= 10 {
				t.Errorf("%s: %s's entry in partition %d says %d ms offset %d; its first record is partition %d offset %d at %d ms", dedupeChangelog, id,
					r.Partition, be.BigEndian.Uint64(r.Value), be.BigEndian.Uint64(r.Value[8:]), src.Partition, src.Offset, src.Timestamp.UnixMilli())
			}
		}
	}
	if extraKeys := len(latest) - len(first); bad > 0 || extraKeys != 0 {
		t.Errorf("%s: %d ids with a wrong last entry; %d keys beside the feed's ids", dedupeChangelog, bad, extraKeys)
	}
	t.Logf("changelog: %d changes (read_committed), the last of each of %d ids naming its first record", len(changes), len(latest))

	committed, ends := b.Committed(dedupeGroup, dedupeIn), b.EndOffsets(dedupeIn)
	if len(ends) != 3 {
		t.Fatalf("%s: end offsets %v", dedupeIn, ends)
	}
	for p, end := range ends {
		if committed[p] != end {
			t.Errorf("%s partition %d: committed offset %d, log end %d", dedupeIn, p, committed[p], end)
		}
	}
}
