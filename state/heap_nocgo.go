//go:build !cgo

package state

// StoresInGoHeap says whether the stores' memory (Memory: Pebble's cache and memtables) is
// the Go runtime's: it is in a build without cgo (the image's).
const StoresInGoHeap = true
