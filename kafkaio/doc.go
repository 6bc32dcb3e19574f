// Package kafkaio is pythia-pipe's one Kafka layer: client-neutral messages, the consumer
// group (partitions claimed, paused, resumed, committed), the producer (ordered per
// partition, idempotent) and the transactional session, and the admin (metadata, topic
// configs, creation, offsets, groups). franz-go is its client for both delivery modes;
// sarama runs behind the same group and producer interfaces (saramaio, `kafka.client:
// sarama`, at-least-once only). Nothing else imports a Kafka client.
package kafkaio
