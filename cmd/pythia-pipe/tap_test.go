package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

// tap prints the records of a pipeline's DLQ, a sink or its source, newest last.
func TestTap(t *testing.T) {
	b := ordersBroker(t, 2)
	var dlq []devbroker.Record
	for i := range 5 {
		dlq = append(dlq, devbroker.Record{Key: fmt.Appendf(nil, "c%d", i), Value: fmt.Appendf(nil, `{"n": %d}`, i), Partition: int32(i % 2),
			Headers:   map[string]string{"pythia.stage": "parse", "pythia.error": fmt.Sprintf("bad %d", i)},
			Timestamp: time.Date(2026, 11, 26, 10, 0, i, 0, time.UTC)})
	}
	if err := b.Produce(context.Background(), "orders-dlq", dlq); err != nil {
		t.Fatal(err)
	}
	if err := b.Produce(context.Background(), "orders", []devbroker.Record{{Key: []byte("k"), Value: []byte("not json"), Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		want   []string // anywhere in the output
		absent []string
	}{
		{"the DLQ's last two", []string{"../../pipelines/orders.yaml", "-n", "2"}, exitOK,
			// headers come in any order (the feed's are a map): one line each
			[]string{"  2026-11-26T10:00:03Z  key=c3\n", "    pythia.stage: parse\n", "    pythia.error: bad 3\n", "    value: {\"n\": 3}\norders-dlq/", "2026-11-26T10:00:04Z  key=c4"},
			[]string{"key=c2"}},
		{"the first from the beginning", []string{"../../pipelines/orders.yaml", "dlq", "--from-beginning", "-n", "1"}, exitOK,
			[]string{"@0  2026-11-26T10:00:00Z  key=c0"}, []string{"key=c1"}},
		{"the source", []string{"../../pipelines/orders.yaml", "source"}, exitOK, []string{"key=k\n    value: not json\n"}, nil},
		{"an empty sink", []string{"../../pipelines/orders.yaml", "out"}, exitOK, nil, []string{"key="}},
		{"no such sink", []string{"../../pipelines/orders.yaml", "nope"}, exitUsage, []string{"nope is neither a sink of orders nor source (choose one of: out, big, dlq, source)"}, nil},
		{"a bad format", []string{"../../pipelines/orders.yaml", "--format", "xml"}, exitUsage, []string{"usage: pythia-pipe tap"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"tap"}, c.args...), &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s", code, c.code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if c3, c4 := strings.Index(out, "key=c3"), strings.Index(out, "key=c4"); c3 >= 0 && c4 >= 0 && c3 > c4 {
				t.Errorf("c3 comes after c4, not newest last:\n%s", out)
			}
			for _, a := range c.absent {
				if strings.Contains(out, a) {
					t.Errorf("output has %q:\n%s", a, out)
				}
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"tap", "../../pipelines/orders.yaml", "--format", "json", "-n", "0", "--from-beginning"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		if len(lines) != 5 {
			t.Fatalf("%d lines, want 5:\n%s", len(lines), stdout.String())
		}
		var first struct {
			Topic     string            `json:"topic"`
			Offset    int64             `json:"offset"`
			Key       string            `json:"key"`
			Value     map[string]int    `json:"value"`
			Headers   map[string]string `json:"headers"`
			Timestamp string            `json:"timestamp"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
			t.Fatal(err)
		}
		if first.Topic != "orders-dlq" || first.Key != "c0" || first.Value["n"] != 0 || first.Headers["pythia.error"] != "bad 0" || first.Timestamp != "2026-11-26T10:00:00Z" {
			t.Fatalf("got %+v", first)
		}
	})
}

// ordersBroker is an in-process broker with the orders example's topics, in partitions each,
// that KAFKA_BROKERS names for the test; it stops with the test.
func ordersBroker(t *testing.T, partitions int32) *devbroker.Broker {
	t.Helper()
	b, err := devbroker.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	t.Setenv("KAFKA_BROKERS", strings.Join(b.Addrs(), ","))
	for _, topic := range []string{"orders", "orders-out", "orders-big", "orders-dlq"} {
		if err := b.CreateTopic(topic, partitions); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// tap shows what read_committed readers see, and ends although each partition ends with a
// transaction marker; --read-uncommitted shows the aborted copies too.
func TestTapTransactional(t *testing.T) {
	b := ordersBroker(t, 3)
	exactlyOnceDLQ(t, b)
	cases := []struct {
		name string
		args []string
		want int    // records listed
		keys string // their keys, in order, when it matters
	}{
		{"the last 10", nil, 5, "c0,c1,c2,c3,c4"},
		{"all from the beginning", []string{"--from-beginning", "-n", "0"}, 5, ""},
		{"the first 4", []string{"--from-beginning", "-n", "4"}, 4, "c0,c1,c2,c3"},
		// The last offsets of partition 0 are an aborted record and its marker: the
		// committed records before them are looked for.
		{"the last 2", []string{"-n", "2"}, 2, "c3,c4"},
		{"aborted too", []string{"--read-uncommitted", "-n", "0"}, 11, ""},
		{"aborted too, as JSON", []string{"--read-uncommitted", "-n", "0", "--format", "json"}, 11, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, append([]string{"tap", "../../pipelines/orders.yaml", "dlq"}, c.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			if n := strings.Count(stdout, "orders-dlq/") + strings.Count(stdout, `"topic":"orders-dlq"`); n != c.want {
				t.Fatalf("%d records, want %d:\n%s", n, c.want, stdout)
			}
			var keys []string
			for _, m := range regexp.MustCompile(`key=(\S+)`).FindAllStringSubmatch(stdout, -1) {
				keys = append(keys, m[1])
			}
			if c.keys != "" && strings.Join(keys, ",") != c.keys {
				t.Fatalf("keys %v, want %s:\n%s", keys, c.keys, stdout)
			}
		})
	}
}

// exactlyOnceDLQ fills orders-dlq as an exactly-once pipeline whose first transaction
// aborted would (devbroker.ExactlyOnceDLQ: 11 records, 5 committed, each partition ending
// with a transaction marker).
func exactlyOnceDLQ(t *testing.T, b *devbroker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.ExactlyOnceDLQ(ctx, "orders-dlq", "orders"); err != nil {
		t.Fatal(err)
	}
	if got := count(b.EndOffsets("orders-dlq")); got != 11+7 {
		t.Fatalf("the DLQ ends at %d offsets, want 18", got)
	}
}

// cli runs the command line args and returns its exit code and output; a command that has
// not ended within a minute fails the test (tap and dlq replay stop at the end they took at
// the start: one that waits for more is the bug).
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		var out, errs bytes.Buffer
		code := run(args, &out, &errs)
		done <- result{code, out.String(), errs.String()}
	}()
	select {
	case r := <-done:
		return r.code, r.stdout, r.stderr
	case <-time.After(time.Minute):
		t.Fatalf("pythia-pipe %v has not ended within a minute", args)
		return 0, "", ""
	}
}
