// Package bench holds the throughput benchmarks of `make bench`: the orders example over a
// backlog on the in-process broker, and, measured in the same run, a careful hand-written
// sarama consume→transform→produce loop doing the same work. It has no code of its own.
package bench
