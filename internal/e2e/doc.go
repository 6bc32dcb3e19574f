// Package e2e is the end-to-end suite on a real Apache Kafka broker (`make e2e`, build tag
// e2e): the orders example over every security protocol, failures of credentials and
// certificates, secrets kept out of every output, a broker restart mid-run, topic creation,
// dlq replay and tap on an exactly-once pipeline's DLQ; Avro and Protobuf with a real Apicurio Registry (evolution, refusals, unknown ids, the
// registry restarted mid-run).
// The crash, rebalance and SIGTERM tests of internal/proctest also run on real Kafka under
// the same tag. It has no code of its own.
package e2e
