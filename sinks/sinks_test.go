package sinks

import (
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/record"
)

func TestEncode(t *testing.T) {
	cases := []struct {
		name string
		rec  record.Record
		enc  string
		want string
		err  bool
	}{
		{"untouched record keeps its bytes", record.Record{Value: []byte(`{"a": 1}`), Msg: map[string]any{"a": 2}}, "", `{"a": 1}`, false},
		{"decoded object as JSON", record.Record{Decoded: true, Msg: map[string]any{"b": 1, "a": "x"}}, "", `{"a":"x","b":1}`, false},
		{"string body as text", record.Record{Decoded: true, Msg: "hello"}, "", "hello", false},
		{"string body as JSON", record.Record{Decoded: true, Msg: "hello"}, "json", `"hello"`, false},
		{"number as text", record.Record{Decoded: true, Msg: 42}, "text", "42", false},
		{"object as bytes fails", record.Record{Decoded: true, Msg: map[string]any{}}, "bytes", "", true},
		{"time in JSON", record.Record{Decoded: true, Msg: map[string]any{"t": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}, "json", `{"t":"2026-01-02T03:04:05Z"}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Encode(&c.rec, c.enc)
			if (err != nil) != c.err || (!c.err && string(got) != c.want) {
				t.Errorf("got %q, %v; want %q (error %v)", got, err, c.want, c.err)
			}
		})
	}
}
