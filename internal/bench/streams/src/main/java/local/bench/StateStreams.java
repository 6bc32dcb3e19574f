package local.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

/**
 * The stateful peers of pythia-pipe's dedupe and aggregate stages, for the benchmarks in
 * internal/bench (state_test.go): what a Kafka Streams user writes for them, at_least_once,
 * committing every 100 ms as every peer in the benchmarks does.
 *
 * <ul>
 *   <li>{@code dedupe}: payments (keyed by payment id) to payments-once, the first record of a
 *       key passing and later ones within an hour of it (by record timestamp) dropped: as
 *       {@code type: dedupe, within: 1h} by the record's key. The usual processor: a persistent
 *       window store (RocksDB, logged to its changelog) of the time each key was first seen,
 *       retained for the hour, so keys expire by dropping old segments (Confluent's "find
 *       distinct events" pattern, without refreshing the time of a duplicate, as pythia-pipe
 *       does not).
 *   <li>{@code dedupe-kv}: the same with a key-value store of key → first-seen time (no expiry:
 *       within the benchmark's hour none is due).
 *   <li>{@code aggregate}: orders-by-customer (keyed by customer) to orders-per-minute: count and
 *       sum of amount per key in 1-minute tumbling windows by record timestamp with 10 s grace,
 *       emitted once as each closes (emitStrategy onWindowClose), as pythia-pipe's aggregate
 *       with {@code window: {tumbling: 1m}, grace: 10s, emit: final}. The output is JSON: key,
 *       window_start, window_end, orders, revenue.
 *   <li>{@code aggregate-suppress}: the same emitting with suppress(untilWindowCloses).
 * </ul>
 *
 * <p>Usage: StateStreams BOOTSTRAP TOPOLOGY STATE-DIR. The application id (the consumer group the
 * benchmark watches) is TOPOLOGY-streams. It prints "started" on stdout once the JVM runs its
 * code and "running" each time the client is running (after a rebalance and its restores), and
 * exits 1 if the Streams client fails.
 */
public final class StateStreams {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Serde<byte[]> BYTES = Serdes.ByteArray();
    private static final Duration WITHIN = Duration.ofHours(1);
    private static final String DEDUPE_STORE = "once";

    /** Drops a key's records within WITHIN of its first, by a window store of first-seen times. */
    static final class WindowDedupe implements FixedKeyProcessor<byte[], byte[], byte[]> {
        private FixedKeyProcessorContext<byte[], byte[]> context;
        private WindowStore<Bytes, Long> seen;

        @Override
        public void init(FixedKeyProcessorContext<byte[], byte[]> context) {
            this.context = context;
            this.seen = context.getStateStore(DEDUPE_STORE);
        }

        @Override
        public void process(FixedKeyRecord<byte[], byte[]> r) {
            Bytes key = Bytes.wrap(r.key());
            long now = r.timestamp();
            // A key first seen in (now - WITHIN, now]: a duplicate.
            try (WindowStoreIterator<Long> it = seen.fetch(key, now - WITHIN.toMillis() + 1, now)) {
                if (it.hasNext()) {
                    return;
                }
            }
            seen.put(key, now, now);
            context.forward(r);
        }
    }

    /** The same by a key-value store of key → first-seen time. */
    static final class KeyValueDedupe implements FixedKeyProcessor<byte[], byte[], byte[]> {
        private FixedKeyProcessorContext<byte[], byte[]> context;
        private KeyValueStore<Bytes, Long> seen;

        @Override
        public void init(FixedKeyProcessorContext<byte[], byte[]> context) {
            this.context = context;
            this.seen = context.getStateStore(DEDUPE_STORE);
        }

        @Override
        public void process(FixedKeyRecord<byte[], byte[]> r) {
            Bytes key = Bytes.wrap(r.key());
            Long first = seen.get(key);
            if (first != null && r.timestamp() - first < WITHIN.toMillis()) {
                return;
            }
            seen.put(key, r.timestamp());
            context.forward(r);
        }
    }

    static Topology dedupe(boolean window) {
        StreamsBuilder builder = new StreamsBuilder();
        StoreBuilder<?> store = window
                ? Stores.windowStoreBuilder(Stores.persistentWindowStore(DEDUPE_STORE, WITHIN, WITHIN, false),
                        Serdes.Bytes(), Serdes.Long())
                : Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(DEDUPE_STORE), Serdes.Bytes(), Serdes.Long());
        builder.addStateStore(store);
        builder.stream("payments", Consumed.with(BYTES, BYTES))
                .processValues(window ? WindowDedupe::new : KeyValueDedupe::new, DEDUPE_STORE)
                .to("payments-once", Produced.with(BYTES, BYTES));
        return builder.build();
    }

    /** A window's count and sum; 16 bytes in its store. */
    record Agg(long orders, double revenue) {
        Agg add(double amount) {
            return new Agg(orders + 1, revenue + amount);
        }
    }

    static final class AggSerde implements Serde<Agg>, Serializer<Agg>, Deserializer<Agg> {
        @Override
        public byte[] serialize(String topic, Agg a) {
            return a == null ? null : ByteBuffer.allocate(16).putLong(a.orders()).putDouble(a.revenue()).array();
        }

        @Override
        public Agg deserialize(String topic, byte[] b) {
            if (b == null) {
                return null;
            }
            ByteBuffer buf = ByteBuffer.wrap(b);
            return new Agg(buf.getLong(), buf.getDouble());
        }

        @Override
        public Serializer<Agg> serializer() {
            return this;
        }

        @Override
        public Deserializer<Agg> deserializer() {
            return this;
        }

        @Override
        public void configure(java.util.Map<String, ?> configs, boolean isKey) {}

        @Override
        public void close() {}
    }

    /** The order's amount; NaN when the value is not a JSON object with a numeric amount. */
    static double amount(byte[] raw) {
        try {
            if (raw != null && JSON.readTree(raw) instanceof ObjectNode order) {
                JsonNode amount = order.get("amount");
                if (amount != null && amount.isNumber()) {
                    return amount.asDouble();
                }
            }
        } catch (IOException e) {
            // not an order: skipped
        }
        return Double.NaN;
    }

    static Topology aggregate(boolean suppress) {
        StreamsBuilder builder = new StreamsBuilder();
        var windowed = builder.stream("orders-by-customer", Consumed.with(BYTES, BYTES))
                .mapValues(StateStreams::amount)
                .filter((key, amount) -> !Double.isNaN(amount))
                .groupByKey(Grouped.with(BYTES, Serdes.Double()))
                .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofSeconds(10)));
        if (!suppress) {
            windowed = windowed.emitStrategy(EmitStrategy.onWindowClose());
        }
        var aggregated = windowed.aggregate(() -> new Agg(0, 0), (key, amount, agg) -> agg.add(amount),
                Materialized.<byte[], Agg, WindowStore<Bytes, byte[]>>as("per-minute")
                        .withKeySerde(BYTES).withValueSerde(new AggSerde()));
        if (suppress) {
            aggregated = aggregated.suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()));
        }
        aggregated.toStream()
                .map((Windowed<byte[]> w, Agg a) -> KeyValue.pair(w.key(), output(w, a)))
                .to("orders-per-minute", Produced.with(BYTES, BYTES));
        return builder.build();
    }

    /** The output record, as pythia-pipe's aggregate writes it. */
    static byte[] output(Windowed<byte[]> w, Agg a) {
        ObjectNode o = JSON.createObjectNode();
        o.put("key", new String(w.key(), java.nio.charset.StandardCharsets.UTF_8));
        o.put("window_start", Instant.ofEpochMilli(w.window().start()).toString());
        o.put("window_end", Instant.ofEpochMilli(w.window().end()).toString());
        o.put("orders", a.orders());
        o.put("revenue", a.revenue());
        try {
            return JSON.writeValueAsBytes(o);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 3) {
            System.err.println("usage: StateStreams BOOTSTRAP-SERVERS dedupe|dedupe-kv|aggregate|aggregate-suppress STATE-DIR");
            System.exit(2);
        }
        Topology topology = switch (args[1]) {
            case "dedupe" -> dedupe(true);
            case "dedupe-kv" -> dedupe(false);
            case "aggregate" -> aggregate(false);
            case "aggregate-suppress" -> aggregate(true);
            default -> {
                System.err.println("unknown topology " + args[1]);
                System.exit(2);
                yield null;
            }
        };
        System.out.println("started");
        System.out.flush();
        Properties config = OrdersStreams.config(args[0]);
        config.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1] + "-streams");
        config.put(StreamsConfig.STATE_DIR_CONFIG, args[2]);
        KafkaStreams streams = new KafkaStreams(topology, config);
        CountDownLatch stopped = new CountDownLatch(1);
        AtomicBoolean terminated = new AtomicBoolean();
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.RUNNING) {
                System.out.println("running"); // the latency benchmark produces from here on
                System.out.flush();
            }
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
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
