package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
)

func TestParseFeed(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	rec := func(key, value *string, headers map[string]string, ts time.Time) devbroker.Record {
		r := devbroker.Record{Headers: headers, Timestamp: ts}
		if key != nil {
			r.Key = []byte(*key)
		}
		if value != nil {
			r.Value = []byte(*value)
		}
		return r
	}
	s := func(v string) *string { return &v }
	cases := []struct {
		name string
		feed string
		want []devbroker.Record
		err  string // the whole error when set
	}{
		{"a plain value", "not json at all\n", []devbroker.Record{rec(nil, s("not json at all"), nil, now)}, ""},
		{"KEY<TAB>VALUE", "c-1\t{\"amount\": 1}\n", []devbroker.Record{rec(s("c-1"), s(`{"amount": 1}`), nil, now)}, ""},
		{"a JSON object without the envelope's fields stays a value as written",
			"{\"order_id\": \"o1\",  \"value\": 3}\n", []devbroker.Record{rec(nil, s(`{"order_id": "o1",  "value": 3}`), nil, now)}, ""},
		{"an envelope's fields without a value stay a value", `{"key": "k1"}` + "\n", []devbroker.Record{rec(nil, s(`{"key": "k1"}`), nil, now)}, ""},
		{"an empty object stays a value", "{}\n", []devbroker.Record{rec(nil, s("{}"), nil, now)}, ""},
		{"JSON that does not parse stays a value", `{"value": }` + "\n", []devbroker.Record{rec(nil, s(`{"value": }`), nil, now)}, ""},
		{"blank lines are skipped, and a last line needs no newline", "\n  \na\n\nb", []devbroker.Record{rec(nil, s("a"), nil, now), rec(nil, s("b"), nil, now)}, ""},
		{"an envelope with everything",
			`{"key": "k1", "value": {"n": 1, "big": 12345678901234567890, "s": "\u00e9"}, "headers": {"b": "2", "a": "1"}, "timestamp": "2026-11-26T10:00:00Z"}` + "\n",
			[]devbroker.Record{rec(s("k1"), s(`{"n":1,"big":12345678901234567890,"s":"\u00e9"}`), map[string]string{"a": "1", "b": "2"}, at)}, ""},
		{"an envelope's value may be an array", `{"value": [1, 2]}`, []devbroker.Record{rec(nil, s("[1,2]"), nil, now)}, ""},
		{"an envelope's string value is written as it is", `{"value": "not \"json\"\tat all"}`, []devbroker.Record{rec(nil, s("not \"json\"\tat all"), nil, now)}, ""},
		{"an empty string is an empty value, not a tombstone", `{"value": ""}`, []devbroker.Record{rec(nil, s(""), nil, now)}, ""},
		{"a null value is a tombstone", `{"key": "k1", "value": null}`, []devbroker.Record{rec(s("k1"), nil, nil, now)}, ""},
		{"a null key is no key", `{"key": null, "value": "v"}`, []devbroker.Record{rec(nil, s("v"), nil, now)}, ""},
		{"a timestamp in epoch milliseconds", `{"value": "v", "timestamp": 1795687200000}`, []devbroker.Record{rec(nil, s("v"), nil, time.UnixMilli(1795687200000))}, ""},
		{"null headers and timestamp are none", `{"value": "v", "headers": null, "timestamp": null}`, []devbroker.Record{rec(nil, s("v"), nil, now)}, ""},
		{"an envelope and a KEY<TAB>VALUE line side by side", "{\"value\": {\"a\": 1}}\nk\t{\"value\": 1}\n",
			[]devbroker.Record{rec(nil, s(`{"a":1}`), nil, now), rec(s("k"), s(`{"value": 1}`), nil, now)}, ""},

		{"a number value is an error that says how to feed the line as it is", "ok\n{\"value\": 21.5}\n", nil,
			`feed.jsonl:2: value: 21.5 is a number; an envelope's value is a JSON object or array, a string (written as it is) or null (a tombstone); to feed this line itself as a value, make it one: {"value": {"value": 21.5}}`},
		{"a boolean value", `{"value": true}`, nil, `feed.jsonl:1: value: true is a boolean; an envelope's value is a JSON object or array, a string (written as it is) or null (a tombstone); to feed this line itself as a value, make it one: {"value": {"value": true}}`},
		{"a key that is not a string", `{"key": 5, "value": "v"}`, nil, "feed.jsonl:1: key: 5 is a number; a key is a string or null"},
		{"headers that are not an object", `{"value": "v", "headers": ["a"]}`, nil, `feed.jsonl:1: headers: ["a"] is an array; headers are an object of strings, e.g. {"source": "web"}`},
		{"a header that is not a string", `{"value": "v", "headers": {"a": "1", "n": 2}}`, nil, "feed.jsonl:1: headers.n: 2 is a number; a header's value is a string"},
		{"a timestamp that is not RFC 3339", "\n\n" + `{"value": "v", "timestamp": "2026-11-26 10:00"}`, nil,
			`feed.jsonl:3: timestamp: "2026-11-26 10:00" is not RFC 3339 (e.g. "2026-11-26T10:00:00Z") or milliseconds since the epoch (e.g. 1795687200000)`},
		{"a timestamp in fractional milliseconds", `{"value": "v", "timestamp": 1.5}`, nil,
			"feed.jsonl:1: timestamp: 1.5 is not RFC 3339 (e.g. \"2026-11-26T10:00:00Z\") or milliseconds since the epoch (e.g. 1795687200000): a number is whole milliseconds, 0 or more"},
		{"a negative timestamp", `{"value": "v", "timestamp": -1}`, nil,
			"feed.jsonl:1: timestamp: -1 is not RFC 3339 (e.g. \"2026-11-26T10:00:00Z\") or milliseconds since the epoch (e.g. 1795687200000): a number is whole milliseconds, 0 or more"},
		{"a timestamp that is a boolean", `{"value": "v", "timestamp": false}`, nil,
			`feed.jsonl:1: timestamp: false is a boolean, not RFC 3339 (e.g. "2026-11-26T10:00:00Z") or milliseconds since the epoch (e.g. 1795687200000)`},

		{"a line of 1 MiB", strings.Repeat("x", feedLineLimit) + "\n", []devbroker.Record{rec(nil, s(strings.Repeat("x", feedLineLimit)), nil, now)}, ""},
		{"a line of 1 MiB ending in CRLF", strings.Repeat("x", feedLineLimit) + "\r\n", []devbroker.Record{rec(nil, s(strings.Repeat("x", feedLineLimit)), nil, now)}, ""},
		{"a line of 1 MiB and a byte", "a\n" + strings.Repeat("x", feedLineLimit+1) + "\n", nil,
			"feed.jsonl:2: the line is longer than 1 MiB (1048576 bytes), the longest a feed line may be"},
		{"a last line of 1 MiB and two bytes, without a newline", "a\n\n" + strings.Repeat("x", feedLineLimit+2), nil,
			"feed.jsonl:3: the line is longer than 1 MiB (1048576 bytes), the longest a feed line may be"},
		{"a line of 3 MiB", "a\n" + strings.Repeat("x", 3<<20) + "\nb\n", nil,
			"feed.jsonl:2: the line is longer than 1 MiB (1048576 bytes), the longest a feed line may be"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseFeed("feed.jsonl", strings.NewReader(c.feed), now)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("error %v\nwant  %s", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d records, want %d: %+v", len(got), len(c.want), got)
			}
			for i, w := range c.want {
				sameRecord(t, i, got[i], w)
			}
		})
	}
}

func sameRecord(t *testing.T, i int, got, want devbroker.Record) {
	t.Helper()
	if (got.Key == nil) != (want.Key == nil) || !bytes.Equal(got.Key, want.Key) {
		t.Errorf("record %d: key %q (nil %v), want %q (nil %v)", i, got.Key, got.Key == nil, want.Key, want.Key == nil)
	}
	if (got.Value == nil) != (want.Value == nil) || !bytes.Equal(got.Value, want.Value) {
		t.Errorf("record %d: value %.80q (nil %v), want %.80q (nil %v)", i, got.Value, got.Value == nil, want.Value, want.Value == nil)
	}
	if len(got.Headers) != len(want.Headers) {
		t.Errorf("record %d: headers %v, want %v", i, got.Headers, want.Headers)
	}
	for k, v := range want.Headers {
		if got.Headers[k] != v {
			t.Errorf("record %d: header %s = %q, want %q", i, k, got.Headers[k], v)
		}
	}
	if !got.Timestamp.Equal(want.Timestamp) {
		t.Errorf("record %d: timestamp %v, want %v", i, got.Timestamp, want.Timestamp)
	}
}

// The feeds in the repository read as they did before envelopes: no line of theirs is taken
// for one, and each is its value, or KEY<TAB>VALUE. Those written as envelopes are apart.
func TestFeedsInTheRepositoryAreUnchanged(t *testing.T) {
	envelopes := map[string]bool{"orders-envelopes.jsonl": true, "payments-dedupe-feed.jsonl": true} // the docs' example; the dedupe test's timestamps
	var feeds []string
	for _, dir := range []string{"../../testdata", "../../pipelines"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".jsonl") && !envelopes[d.Name()] {
				feeds = append(feeds, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(feeds) < 2 {
		t.Fatalf("found only %v", feeds)
	}
	now := time.Now()
	for _, path := range feeds {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []devbroker.Record
			for _, line := range strings.Split(string(src), "\n") {
				if strings.TrimSpace(line) == "" {
					continue
				}
				r := devbroker.Record{Value: []byte(line), Timestamp: now}
				if k, v, ok := strings.Cut(line, "\t"); ok {
					r.Key, r.Value = []byte(k), []byte(v)
				}
				want = append(want, r)
			}
			got, err := readFeed(path, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i := range want {
				sameRecord(t, i, got[i], want[i])
			}
		})
	}
}

func TestSample(t *testing.T) {
	cases := []struct {
		name string
		rec  devbroker.Record
		full bool
		want string
	}{
		{"a key and a value", devbroker.Record{Key: []byte("k1"), Value: []byte(`{"a":1}`)}, false, `key=k1 {"a":1}`},
		{"no key", devbroker.Record{Value: []byte("v")}, false, "key=- v"},
		{"headers sorted by name", devbroker.Record{Key: []byte("k1"), Value: []byte(`{"json":true}`),
			Headers: map[string]string{"b": "2", "a": "1", "trace-id": "t-9"}}, false, `key=k1 headers={a=1,b=2,trace-id=t-9} {"json":true}`},
		{"a tombstone", devbroker.Record{Key: []byte("k2"), Headers: map[string]string{"a": "1"}}, false, "key=k2 headers={a=1} null (a tombstone)"},
		{"an empty value", devbroker.Record{Key: []byte("k3"), Value: []byte{}}, false, "key=k3 (an empty value)"},
		{"bytes that are not text", devbroker.Record{Value: []byte{0xff, 0xfe}}, false, "key=- base64://4="},
		{"a long value is cut", devbroker.Record{Value: []byte(strings.Repeat("x", 200))}, false, "key=- " + strings.Repeat("x", 99) + "…"},
		{"--full: a long key, header and value whole", devbroker.Record{Key: []byte(strings.Repeat("k", 50)), Value: []byte(strings.Repeat("x", 200)),
			Headers: map[string]string{"h": strings.Repeat("y", 50)}}, true,
			"key=" + strings.Repeat("k", 50) + " headers={h=" + strings.Repeat("y", 50) + "} " + strings.Repeat("x", 200)},
		{"--full: controls still escaped", devbroker.Record{Value: []byte("a\nb\x1b")}, true, `key=- a\nb\x1b`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sample(c.rec, c.full); got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}
