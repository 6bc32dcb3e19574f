package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/devkit"
	"github.com/pythia-pipe/pythia-pipe/devkit/devregistry"
	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/sinks"
)

// toolLines point tap and dlq replay at dev's broker, through the variable kafka.brokers is
// written with; or say why they cannot be, and what to change. Call it before dev replaces
// the file's kafka settings by its broker's.
func toolLines(p *pipeline.Pipeline, addrs []string) []string {
	file := shellQuote(p.File)
	switch {
	case p.Kafka.SASL != nil || p.Kafka.TLS != nil:
		return []string{"note: tap and dlq replay would use kafka.security, which the in-process broker does not speak: to look at its topics, run dev on a copy of " + file + " without it"}
	case len(p.Kafka.BrokerVars) == 0:
		return []string{fmt.Sprintf("note: kafka.brokers names no ${VAR}, so tap and dlq replay cannot be pointed at the in-process broker: write it as ${KAFKA_BROKERS:-%s}", strings.Join(p.Kafka.Brokers, ","))}
	}
	var env []string
	for _, v := range p.Kafka.BrokerVars {
		env = append(env, v+"="+strings.Join(addrs, ","))
	}
	prefix := "  " + strings.Join(env, " ") + " pythia-pipe "
	lines := []string{"to look at its topics while it runs, from another terminal:"}
	for _, s := range p.Sinks {
		if namedTopic(s) != "" {
			lines = append(lines, prefix+"tap "+file+" "+s.Name+" --follow")
		}
	}
	if p.DLQ != nil && namedTopic(p.DLQ) != "" {
		lines = append(lines, prefix+"tap "+file+" dlq --follow", prefix+"dlq replay "+file+" --dry-run")
	}
	return lines
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeOut writes the records of each sink that names its topic, and the DLQ's, to
// dir/NAME.jsonl as tap --format json prints them (values of an avro or protobuf sink as
// JSON); it says what it wrote, and which sinks it could not.
func writeOut(w io.Writer, dir string, b *devkit.Broker, p *pipeline.Pipeline) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: name a folder dev may create and write", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range p.SinksAndDLQ() {
		topic := namedTopic(s)
		if topic == "" {
			if _, toKafka := s.Impl.(sinks.TopicWriter); toKafka {
				fmt.Fprintf(w, "out: %s computes its topic per record: tap FILE %s reads its topics\n", s.Name, s.Name)
			}
			continue
		}
		recs, err := b.Read(ctx, topic)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, s.Name+".jsonl")
		if err := writeJSONLines(path, topic, s, recs); err != nil {
			return err
		}
		fmt.Fprintf(w, "out: %d records of %s → %s\n", len(recs), s.Name, path)
	}
	return nil
}

func writeJSONLines(path, topic string, s *pipeline.Sink, recs []devkit.Record) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	for _, r := range recs {
		m := &kafkaio.Message{Topic: topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: devregistry.Readable(s, r.Value), Timestamp: r.Timestamp}
		for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
			m.Headers = append(m.Headers, kafkaio.Header{Key: k, Value: []byte(r.Headers[k])})
		}
		bw.Write(jsonLine(m))
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
