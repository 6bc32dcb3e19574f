// Package proctest holds the tests that run the built pythia-pipe binary as separate
// processes against an in-process broker: SIGKILL crashes, consumer-group rebalances across
// processes, SIGTERM drains and startup errors. It has no code of its own.
package proctest
