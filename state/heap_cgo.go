//go:build cgo

package state

// StoresInGoHeap says whether the stores' memory (Memory: Pebble's cache and memtables) is
// the Go runtime's: Pebble allocates it in C when built with cgo.
const StoresInGoHeap = false
