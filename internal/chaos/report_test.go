//go:build chaos

package chaos

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

var (
	reportMu sync.Mutex
	results  []result
)

// record keeps a run's row for the report.
func record(res result) {
	reportMu.Lock()
	defer reportMu.Unlock()
	results = append(results, res)
}

// writeReport prints the runs as a Markdown table, and writes it to CHAOS_REPORT when set.
func writeReport() error {
	reportMu.Lock()
	defer reportMu.Unlock()
	if len(results) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chaos suite, %s, %d records a run\n\n", time.Now().UTC().Format("2006-01-02"), records())
	b.WriteString("| fault | delivery | caught up after | max lag | most records waiting | duplicates | aborted records | refused writes | longest write wait | longest source wait | txn aborts | rebalances | warnings | progress lines waiting | /healthz waiting | /healthz failed |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %.1f s | %.0f | %.0f | %d | %d | %.0f | %.0f s | %.0f s | %.0f | %.0f | %d | %d | %d | %d |\n", r.scenario, r.mode,
			r.recovered.Seconds(), r.maxLag, r.maxPending, r.duplicates, r.aborted, r.refused, r.maxWait, r.sourceWait, r.txnAborts, r.rebalances,
			r.warnings, r.progressSaid, r.healthSaid, r.unhealthy)
	}
	b.WriteString("\n")
	for _, r := range results {
		notes := r.notes
		if r.firstWarning != "" {
			notes = append(notes, "first warning: "+r.firstWarning)
		}
		if r.healthFailed != "" {
			notes = append(notes, "/healthz failed: "+r.healthFailed)
		}
		if len(notes) > 0 {
			fmt.Fprintf(&b, "- %s/%s: %s\n", r.scenario, r.mode, strings.Join(notes, "; "))
		}
	}
	fmt.Print("\n" + b.String())
	if path := os.Getenv("CHAOS_REPORT"); path != "" {
		return os.WriteFile(path, []byte(b.String()), 0o644)
	}
	return nil
}

// envString is environment variable name's value.
func envString(name string) string { return os.Getenv(name) }
