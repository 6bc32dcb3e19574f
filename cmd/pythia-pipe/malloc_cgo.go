//go:build cgo && linux

package main

// In a cgo build Pebble keeps its stores' cache and memtables in C memory (state.cache), a
// few KiB a block, freed as the cache turns over. glibc keeps what is freed: in an arena per
// thread that allocated under contention (up to 8 per core), and within an arena wherever a
// free page is not at its top. A dedupe restoring 10M keys, Pebble counting 65 MB of C
// memory, peaked at 263-288 MB; at 204-224 MB with two arenas; at 177 MB trimming them every
// 2 s as well. MALLOC_ARENA_MAX, when set, keeps its say; musl has neither to tune.

/*
#include <malloc.h>
#include <stdlib.h>

static void fewArenas(void) {
#ifdef M_ARENA_MAX
	if (getenv("MALLOC_ARENA_MAX") == NULL) {
		mallopt(M_ARENA_MAX, 2);
	}
#endif
}

static void trim(void) {
#ifdef M_ARENA_MAX
	malloc_trim(0);
#endif
}
*/
import "C"

import "time"

func init() { C.fewArenas() }

// trimMalloc gives the C memory freed back to the system every 2 s, until stop is called.
func trimMalloc() (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				C.trim()
			}
		}
	}()
	return func() { close(done) }
}
