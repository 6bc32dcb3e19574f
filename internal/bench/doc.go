// Package bench holds the throughput benchmarks of `make bench`: the orders example over a
// backlog on the in-process broker (or a real Kafka with BENCH_KAFKA=real), the same orders
// on Avro framed for a schema registry (in process, or Apicurio on real Kafka), and, measured
// in the same run, its peers doing the same work: careful hand-written
// consume→transform→produce loops on sarama and on franz-go, and Kafka Streams 4.1 (streams/,
// built with Maven); and the stateful stages, dedupe and a windowed aggregate, beside Kafka
// Streams doing the same (streams/StateStreams.java, on a real Kafka), with the dedupe's
// restore from its changelog and its memory as its keys grow (BENCH_TABLES=state). It has no
// code of its own.
package bench
