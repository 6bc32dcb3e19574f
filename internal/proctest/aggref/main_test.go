package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// t0 is a whole minute, in Unix ms.
const t0 = 1_800_000_000_000 - 1_800_000_000_000%60_000

func feed(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "feed.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func line(id, customer string, amount, ts int64, phase int) string {
	return fmt.Sprintf(`{"order_id":%q,"customer_id":%q,"amount":%d,"ts":%d,"phase":%d}`, id, customer, amount, ts, phase)
}

// A window closed by its customer's next phase is emitted with its on-time orders; an order
// before what its customer's earlier phase brought, past the grace, is late; the last phase's
// windows stay open.
func TestReference(t *testing.T) {
	const m, grace = 60_000, 5 * 60_000
	path := feed(t,
		line("a", "c1", 5, t0+10_000, 0),
		line("b", "c1", 7, t0+30_000, 0),
		line("c", "c2", 3, t0+5_000, 0),
		line("d", "c1", 1, t0+30*m, 1),
		line("e", "c1", 9, t0-60*m, 1), // late: c1's phase 0 took the stream time past its window
		line("f", "c2", 1, t0+30*m, 1),
	)
	var out strings.Builder
	if err := run(path, m, grace, &out); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("window c1 %d 2 12\nwindow c2 %d 1 3\nlate e\n", t0, t0)
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// A feed whose outcome depends on how a phase's records interleave is refused: c1's window
// closes if c2's later order comes first in their partition, not otherwise.
func TestReferenceRefusesTiming(t *testing.T) {
	const m, grace = 60_000, 5 * 60_000
	path := feed(t,
		line("a", "c1", 5, t0, 0),
		line("b", "c2", 7, t0+10*m, 0),
		line("c", "c1", 1, t0+30*m, 1),
	)
	var out strings.Builder
	err := run(path, m, grace, &out)
	if err == nil || !strings.Contains(err.Error(), "depend on timing") {
		t.Fatalf("run: %v, want the feed refused; wrote %q", err, out.String())
	}
}
