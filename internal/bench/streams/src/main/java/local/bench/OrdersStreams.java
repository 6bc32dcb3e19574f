package local.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Duration;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;

/**
 * The orders example (pipelines/orders.yaml) in Kafka Streams, for the benchmark in
 * internal/bench: the same work as BenchmarkHandWrittenSarama's transform. Records that are not
 * a JSON object with a numeric amount go, as they came, to orders-dlq; amount <= 0 is dropped;
 * the rest get region in upper case and total_cents = round(amount * 100), and go to orders-big
 * when amount >= 1000, else to orders-out. Keys, timestamps (and headers) are the consumed ones.
 *
 * <p>Usage: OrdersStreams BOOTSTRAP. It prints "started" on stdout once the JVM runs its code (the
 * benchmark starts its clock there), and exits 1 if the Streams client fails.
 */
public final class OrdersStreams {
    private static final ObjectMapper JSON =
            new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS); // as Go's json.Unmarshal
    private static final Serde<byte[]> BYTES = Serdes.ByteArray();
    private static final Produced<byte[], byte[]> OUT = Produced.with(BYTES, BYTES);

    /** A consumed value: the decoded order, or null when it goes to the DLQ. */
    private record Decoded(byte[] raw, ObjectNode order, double amount) {
        static Decoded of(byte[] raw) {
            try {
                if (raw != null && JSON.readTree(raw) instanceof ObjectNode order) {
                    JsonNode amount = order.get("amount");
                    if (amount != null && amount.isNumber()) {
                        return new Decoded(raw, order, amount.asDouble());
                    }
                }
            } catch (IOException e) {
                // not JSON: to the DLQ
            }
            return new Decoded(raw, null, 0);
        }
    }

    static Topology topology() {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream("orders", Consumed.with(BYTES, BYTES))
                .mapValues(Decoded::of)
                .split()
                .branch((key, d) -> d.order() == null,
                        Branched.withConsumer(bad -> bad.mapValues(Decoded::raw).to("orders-dlq", OUT)))
                .defaultBranch(Branched.withConsumer(good -> good
                        .filter((key, d) -> d.amount() > 0)
                        .mapValues(OrdersStreams::shape)
                        .split()
                        .branch((key, d) -> d.amount() >= 1000,
                                Branched.withConsumer(big -> write(big, "orders-big")))
                        .defaultBranch(Branched.withConsumer(out -> write(out, "orders-out")))));
        return builder.build();
    }

    /** shape sets region and total_cents as the Go loop does (its round is int64(x + 0.5)). */
    private static Decoded shape(Decoded d) {
        JsonNode region = d.order().get("region");
        d.order().put("region", (region != null && region.isTextual() ? region.textValue() : "").toUpperCase(Locale.ROOT));
        d.order().put("total_cents", (long) (d.amount() * 100 + 0.5));
        return d;
    }

    private static void write(KStream<byte[], Decoded> stream, String topic) {
        stream.mapValues(d -> {
            try {
                return JSON.writeValueAsBytes(d.order());
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e); // a tree read from JSON always writes
            }
        }).to(topic, OUT);
    }

    static Properties config(String bootstrap) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "orders-streams"); // also the consumer group the benchmark watches
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        // As the Go peers in the benchmark: the run ends at the commit of the last offset, so a
        // long interval would blur the time by up to its length.
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        // One stream thread per core: the benchmark machine has 2. The topics' 8 partitions make
        // 8 tasks, 4 a thread.
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 2);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // The producer of the Go peers: acks=all, idempotent, 5 ms linger, 512 KiB batches.
        p.put(StreamsConfig.producerPrefix(ProducerConfig.ACKS_CONFIG), "all");
        p.put(StreamsConfig.producerPrefix(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG), true);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), 512 << 10);
        return p;
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 1) {
            System.err.println("usage: OrdersStreams BOOTSTRAP-SERVERS");
            System.exit(2);
        }
        System.out.println("started");
        System.out.flush();
        KafkaStreams streams = new KafkaStreams(topology(), config(args[0]));
        CountDownLatch stopped = new CountDownLatch(1);
        AtomicBoolean terminated = new AtomicBoolean();
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        // SIGTERM: close cleanly, committing what was processed.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            terminated.set(true);
            streams.close(Duration.ofSeconds(30));
        }));
        streams.start();
        stopped.await();
        if (!terminated.get()) {
            streams.close(Duration.ofSeconds(30));
            System.exit(1);
        }
    }
}
