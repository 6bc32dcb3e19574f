package dlq

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaio"
	"github.com/pythia-pipe/pythia-pipe/record"
)

type nopSettler struct{}

func (nopSettler) Settle(uint64) {}

// failedRecord is a record as a stage that failed it holds it: its key and headers changed
// since it was consumed.
func failedRecord() *record.Record {
	return &record.Record{Key: []byte("changed"), OrigKey: []byte("k"), Value: []byte("raw"), Topic: "orders", Partition: 2, Offset: 41,
		Timestamp: time.UnixMilli(1700000000000), Headers: []record.Header{{Key: "new", Value: nil}},
		OrigHeaders: []record.Header{{Key: "trace", Value: []byte("t1")}}, Track: record.NewTracker(nopSettler{}, 0)}
}

var parseFailure = Failure{Pipeline: "p", Stage: "parse", Reason: "bad json", Attempts: 3, At: time.Unix(1800000000, 0)}

// The DLQ record is the record as consumed, with the format's headers added as text.
func TestRecord(t *testing.T) {
	in := failedRecord()
	d := Record(in, parseFailure)
	if string(d.Key) != "k" || string(d.Value) != "raw" || d.Track != in.Track || d.Decoded {
		t.Fatalf("not the original record: %+v", d)
	}
	want := map[string]string{"trace": "t1", HeaderError: "bad json", HeaderStage: "parse", HeaderPipeline: "p",
		HeaderSourceTopic: "orders", HeaderSourcePartition: "2", HeaderSourceOffset: "41",
		HeaderSourceTimestamp: "2023-11-14T22:13:20Z", HeaderAttempts: "3", HeaderFailedAt: "2027-01-15T08:00:00Z"}
	for k, v := range want {
		if got, ok := d.Header(k); !ok || string(got) != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if len(d.Headers) != len(want) {
		t.Errorf("%d headers, want %d: %v", len(d.Headers), len(want), d.Headers)
	}
	if _, ok := d.Header("new"); ok {
		t.Error("a header a stage added leaked into the DLQ record")
	}
}

// What Record and Fit write, Decode reads back as it was.
func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	source := Source{Topic: "orders", Partition: 2, Offset: 41, Timestamp: time.UnixMilli(1700000000000).UTC()}
	replayedOnce := failedRecord()
	replayedOnce.OrigHeaders = append(replayedOnce.OrigHeaders, record.Header{Key: HeaderReplayed, Value: []byte("1")})
	cases := []struct {
		name  string
		rec   *record.Record
		f     Failure
		limit int  // 0: not fitted
		want  Info // OriginalBytes is filled in for a fitted one

	}{
		{"a failed parse", failedRecord(), parseFailure, 0,
			Info{Source: source, Failure: Failure{Pipeline: "p", Stage: "parse", Reason: "bad json", Attempts: 3, At: parseFailure.At.UTC()}}},
		{"no attempts counted is one", failedRecord(), Failure{Stage: "s", At: at}, 0,
			Info{Source: source, Failure: Failure{Stage: "s", Attempts: 1, At: at.UTC()}}},
		{"failed again after a replay", replayedOnce, parseFailure, 0,
			Info{Source: source, Failure: Failure{Pipeline: "p", Stage: "parse", Reason: "bad json", Attempts: 3, At: parseFailure.At.UTC()}, Replayed: 1}},
		{"the longest numbers", func() *record.Record {
			r := failedRecord()
			r.Partition, r.Offset = math.MaxInt32, math.MaxInt64
			return r
		}(), Failure{Pipeline: "p", Stage: "parse", Reason: "bad json", Attempts: math.MaxInt, At: at},
			0, Info{Source: Source{Topic: "orders", Partition: math.MaxInt32, Offset: math.MaxInt64, Timestamp: source.Timestamp},
				Failure: Failure{Pipeline: "p", Stage: "parse", Reason: "bad json", Attempts: math.MaxInt, At: at.UTC()}}},
		{"cut to fit", func() *record.Record { r := failedRecord(); r.Value = make([]byte, 1000); return r }(), parseFailure, 600,
			Info{Source: source, Failure: Failure{Pipeline: "p", Stage: "parse", Reason: "bad json", Attempts: 3, At: parseFailure.At.UTC()},
				Truncated: CutValue}}, // OriginalBytes: what it weighed
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Record(c.rec, c.f)
			headers := d.Headers
			if c.limit > 0 {
				msg := &kafkaio.Message{Key: d.Key, Value: d.Value, Headers: d.Headers}
				c.want.OriginalBytes = weight(msg)
				Fit(msg, c.limit, weight)
				headers = msg.Headers
			}
			got, err := Decode(headers)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}

// Decode reads what it can of any headers, names each value it cannot read, and leaves the
// record's own headers alone.
func TestDecode(t *testing.T) {
	h := func(kv ...string) []record.Header {
		var out []record.Header
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, record.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	none := Info{Source: Source{Partition: -1, Offset: -1}}
	with := func(change func(*Info)) Info {
		i := none
		change(&i)
		return i
	}
	cases := []struct {
		name    string
		headers []record.Header
		want    Info
		bad     []string // the headers named in the error
	}{
		{"every header", h(HeaderError, "bad json", HeaderStage, "parse", HeaderPipeline, "orders", HeaderSourceTopic, "orders",
			HeaderSourcePartition, "0", HeaderSourceOffset, "0", HeaderSourceTimestamp, "2026-11-26T09:59:59.5Z",
			HeaderAttempts, "4", HeaderFailedAt, "2026-11-26T10:00:00Z", HeaderReplayed, "2", HeaderTruncated, "value,headers,key",
			HeaderOriginalBytes, "2000000"),
			Info{Source: Source{Topic: "orders", Partition: 0, Offset: 0, Timestamp: time.Date(2026, 11, 26, 9, 59, 59, 5e8, time.UTC)},
				Failure:  Failure{Pipeline: "orders", Stage: "parse", Reason: "bad json", Attempts: 4, At: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)},
				Replayed: 2, Truncated: CutKey, OriginalBytes: 2000000}, nil},
		{"no headers: not a pipeline's", nil, none, nil},
		{"only the record's own", h("trace", "t-1", "pythia", "not one of ours"), none, nil},
		{"missing partition and offset are -1", h(HeaderSourceTopic, "orders"), with(func(i *Info) { i.Source.Topic = "orders" }), nil},
		{"an unknown pythia header is ignored", h("pythia.future", "x"), none, nil},
		{"the last of a name wins", h(HeaderStage, "old", HeaderReplayed, "1", HeaderStage, "new"),
			with(func(i *Info) { i.Failure.Stage, i.Replayed = "new", 1 }), nil},
		{"an empty truncated is no cut", h(HeaderTruncated, ""), none, nil},
		{"each cut", h(HeaderTruncated, "value,headers"), with(func(i *Info) { i.Truncated = CutHeaders }), nil},
		{"a partition that is not a number", h(HeaderSourcePartition, "two"), none, []string{HeaderSourcePartition}},
		{"a negative partition", h(HeaderSourcePartition, "-1"), none, []string{HeaderSourcePartition}},
		{"a partition beyond int32", h(HeaderSourcePartition, "4294967298"), none, []string{HeaderSourcePartition}},
		{"a malformed partition after a good one", h(HeaderSourcePartition, "1", HeaderSourcePartition, "x"), none, []string{HeaderSourcePartition}},
		{"an offset with spaces", h(HeaderSourceOffset, " 41"), none, []string{HeaderSourceOffset}},
		{"a time that is not RFC 3339", h(HeaderFailedAt, "yesterday", HeaderSourceTimestamp, "1700000000000"), none,
			[]string{HeaderFailedAt, HeaderSourceTimestamp}},
		{"counts below 0 or not numbers", h(HeaderAttempts, "-1", HeaderReplayed, "once", HeaderOriginalBytes, "1e6"), none,
			[]string{HeaderAttempts, HeaderReplayed, HeaderOriginalBytes}},
		{"a cut it does not know is still a cut", h(HeaderTruncated, "key"), with(func(i *Info) { i.Truncated = CutUnknown }), []string{HeaderTruncated}},
		{"what is good is read beside what is not", h(HeaderStage, "parse", HeaderReplayed, "x", HeaderSourceTopic, "orders"),
			with(func(i *Info) { i.Failure.Stage, i.Source.Topic = "parse", "orders" }), []string{HeaderReplayed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Decode(c.headers)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("decoded\n%+v\nwant\n%+v", got, c.want)
			}
			var named []string
			for _, e := range unjoin(err) {
				var m *MalformedError
				if !errors.As(e, &m) {
					t.Fatalf("%v is not a *MalformedError", e)
				}
				named = append(named, m.Name)
			}
			if !reflect.DeepEqual(named, c.bad) {
				t.Errorf("malformed %v (%v), want %v", named, err, c.bad)
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

// The error names the header and quotes its value, control characters escaped.
func TestMalformedErrorText(t *testing.T) {
	_, err := Decode([]record.Header{{Key: HeaderReplayed, Value: []byte("1\x1b[2J")}})
	if want := `pythia.replayed: "1\x1b[2J" is not a count`; err == nil || err.Error() != want {
		t.Fatalf("%v, want %s", err, want)
	}
}

// The names are the format on the wire: DLQs already written, and whatever reads them, hold
// them as they are here. Changing one is a change of the format, not a rename.
func TestHeaderNames(t *testing.T) {
	for name, want := range map[string]string{
		HeaderError: "pythia.error", HeaderStage: "pythia.stage", HeaderPipeline: "pythia.pipeline",
		HeaderSourceTopic: "pythia.source.topic", HeaderSourcePartition: "pythia.source.partition",
		HeaderSourceOffset: "pythia.source.offset", HeaderSourceTimestamp: "pythia.source.timestamp",
		HeaderAttempts: "pythia.attempts", HeaderFailedAt: "pythia.failed_at", HeaderReplayed: "pythia.replayed",
		HeaderTruncated: "pythia.truncated", HeaderOriginalBytes: "pythia.original_bytes",
	} {
		if name != want || !IsHeader(name) {
			t.Errorf("header %q, want %q", name, want)
		}
	}
	for c, want := range map[Cut]string{Uncut: "", CutValue: "value", CutHeaders: "value,headers", CutKey: "value,headers,key"} {
		if c.String() != want {
			t.Errorf("cut %d is written %q, want %q", c, c, want)
		}
	}
}
