package bench

import (
	"runtime"
	"time"
)

// watchHeap writes a heap profile to path each time the live heap reaches a new peak (checked
// every 100ms), so that the file ends up holding the profile at the run's peak; it stops when
// stop is closed.
func watchHeap(path string, stop <-chan struct{}) {
	var peak uint64
	var ms runtime.MemStats
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse < peak+peak/10 {
			continue
		}
		peak = ms.HeapInuse
		writeProfile("heap", path)
	}
}
