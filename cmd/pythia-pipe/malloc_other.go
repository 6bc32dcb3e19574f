//go:build !cgo || !linux

package main

// trimMalloc does nothing: without cgo the stores' memory is Go's (malloc_cgo.go).
func trimMalloc() (stop func()) { return func() {} }
