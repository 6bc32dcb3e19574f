package kafkaio

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// TopicRules are what a topic's configs say about the records its brokers take: a record
// that breaks one is refused for its own reason, so a sink checks them before it writes.
type TopicRules struct {
	MaxBytes  int  // max.message.bytes: the largest record batch; 0 when unknown
	Compacted bool // cleanup.policy holds compact: a record needs a key
	// With message.timestamp.type CreateTime the broker checks a record's own timestamp:
	// at most Before earlier and After later than its clock (0: no bound).
	CreateTime    bool
	Before, After time.Duration
}

// Rules reads the rules of topics, within the connect timeout. A topic whose configs cannot
// be read (no DescribeConfigs right, brokers away) is left out, and its records are not
// checked before they are written: the broker still refuses what breaks them.
func (a *Admin) Rules(ctx context.Context, topics ...string) map[string]TopicRules {
	ctx, cancel := context.WithTimeout(ctx, a.wait)
	defer cancel()
	// What kadm returns beside an error (some brokers' shards failed, no right to a topic)
	// was answered: it is kept, and the topics missing from it are left out.
	described, _ := a.adm.DescribeTopicConfigs(ctx, topics...)
	out := map[string]TopicRules{}
	for _, rc := range described {
		if rc.Err != nil {
			continue
		}
		values := map[string]string{}
		for _, c := range rc.Configs {
			values[c.Key] = c.MaybeValue()
		}
		out[rc.Name] = rulesOf(values)
	}
	return out
}

// rulesOf reads the rules from a topic's config values. message.timestamp.difference.max.ms
// (before Kafka 3.6, gone in 4.0) bounds both sides when the newer two are not set.
func rulesOf(v map[string]string) TopicRules {
	r := TopicRules{CreateTime: v["message.timestamp.type"] != "LogAppendTime"}
	if n, err := strconv.Atoi(v["max.message.bytes"]); err == nil && n > 0 {
		r.MaxBytes = n
	}
	for _, p := range strings.Split(v["cleanup.policy"], ",") {
		r.Compacted = r.Compacted || strings.TrimSpace(p) == "compact"
	}
	r.Before, r.After = bound(v["message.timestamp.before.max.ms"]), bound(v["message.timestamp.after.max.ms"])
	if d := bound(v["message.timestamp.difference.max.ms"]); d > 0 {
		if _, set := v["message.timestamp.before.max.ms"]; !set {
			r.Before = d
		}
		if _, set := v["message.timestamp.after.max.ms"]; !set {
			r.After = d
		}
	}
	return r
}

// bound is a timestamp bound in milliseconds; 0 for none (unset, or Long.MAX_VALUE, Kafka's
// "no bound").
func bound(ms string) time.Duration {
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 || n >= int64(1)<<43 { // ~278 years: unbounded in practice, and no overflow below
		return 0
	}
	return time.Duration(n) * time.Millisecond
}
