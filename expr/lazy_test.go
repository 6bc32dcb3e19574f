package expr

import (
	"fmt"
	"testing"

	"github.com/pythia-pipe/pythia-pipe/diag"
	"github.com/pythia-pipe/pythia-pipe/record"
)

const lazyBody = `{"a": 1, "f": 2.50, "s": "x<y", "b": {"c": "d"}, "items": [{"sku": "s1", "qty": 2}], "n": null, "a": 3}`

// lazyAndMap decodes body both ways a decode stage may.
func lazyAndMap(t *testing.T, body string, unread func(string) bool) (*record.Object, any) {
	t.Helper()
	v, err := record.NewDecoder(unread, 0).DecodeLazy([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	o, ok := v.(*record.Object)
	if !ok {
		t.Fatalf("not lazy: %T", v)
	}
	m, err := record.NewDecoder(unread, 0).Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return o, m
}

// An expression may see a lazy body only when it reads msg by its fields' names; then it
// computes on one what it computes on the map it stands for, errors included.
func TestLazyExpressions(t *testing.T) {
	cases := []struct {
		src  string
		lazy bool
	}{
		{`msg.a > 0`, true},
		{`msg["f"] * 2`, true},
		{`msg?.s`, true},
		{`msg == nil || msg.a > 2`, true},
		{`nil != msg && msg.zz == nil`, true},
		{`msg.b.c + msg.s`, true},
		{`all(msg.items, .qty > 1) && map(msg.items, .sku)[0] == "s1"`, true},
		{`msg.items[0].qty`, true},
		{`msg.n ?? "none"`, true},
		{`msg.s.x`, true},
		{`key == "k"`, true},
		{`msg`, false},
		{`keys(msg)`, false},
		{`len(msg)`, false},
		{`"a" in msg`, false},
		{`msg[key]`, false},
		{`msg[key == "k" ? "a" : "f"]`, false},
		{`toJSON(msg)`, false},
		{`$env.msg.a`, false},
		{`let m = msg; m.a`, false},
		{`{"x": msg}.x.a`, false},
		{`msg == msg`, false},
	}
	o, m := lazyAndMap(t, lazyBody, nil)
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			var diags diag.List
			reads := NewBodyReads()
			p := Compile(exprValue(c.src), Env{Reads: reads}, WantAny, &diags)
			if p == nil {
				t.Fatal(diags.Err())
			}
			reads.Done()
			if reads.Lazy() != c.lazy {
				t.Fatalf("lazy %v, want %v", reads.Lazy(), c.lazy)
			}
			if !c.lazy {
				return
			}
			run := func(msg any) string {
				b := NewBinder(p)
				vars := b.Bind(&record.Record{Key: []byte("k"), Msg: msg, Decoded: true})
				defer b.Release(vars)
				out, err := p.Run(vars)
				return fmt.Sprintf("%#v %v", out, err)
			}
			if got, want := run(o), run(m); got != want {
				t.Errorf("on a lazy body: %s; on a map: %s", got, want)
			}
		})
	}
}

// LazyCheck is Coerce for lazy bodies: the same errors, and what it keeps encodes as the
// map Coerce keeps.
func TestLazyCheckAgrees(t *testing.T) {
	schemas := []struct{ name, yaml string }{
		{"orders", `{order_id: string, customer_id: string, amount: float, region: string, "*": any}`},
		{"closed", `{id: int, name: "string?"}`},
		{"typed others", `{id: int, "*": float}`},
		{"kinds", `{at: "time?", raw: "bytes?", tags: [string], ok: "bool?", c: {n: int}, "*": any}`},
	}
	bodies := []struct{ name, body string }{
		{"orders", `{"order_id":"o1","customer_id":"c1","amount":12.5,"region":"eu","note":"n"}`},
		{"an int for a float", `{"order_id":"o1","customer_id":"c1","amount":12,"region":"eu","id":3}`},
		{"a float for an int", `{"id":3.0,"name":"x"}`},
		{"an int too large", `{"id":12345678901234567890}`},
		{"a fraction for an int", `{"id":3.5}`},
		{"a string for an int", `{"id":"3"}`},
		{"missing", `{"name":"x"}`},
		{"null optional", `{"id":1,"name":null}`},
		{"another field", `{"id":1,"other":true}`},
		{"others as floats", `{"id":1,"x":2,"y":"no"}`},
		{"duplicates", `{"id":"x","id":2,"x":"no","x":1.5}`},
		{"kinds", `{"at":"2024-01-02T03:04:05.000Z","raw":"aGk=","tags":["a","b"],"ok":true,"c":{"n":2.0}}`},
		{"kinds wrong", `{"at":"yesterday"}`},
		{"list wrong", `{"tags":["a",1]}`},
		{"nested wrong", `{"c":{"n":"x"}}`},
		{"bool wrong", `{"ok":"yes"}`},
	}
	for _, s := range schemas {
		for _, b := range bodies {
			t.Run(s.name+"/"+b.name, func(t *testing.T) {
				schema := schemaOf(t, s.yaml)
				for _, f := range []string{"tags", "c"} { // optional, which schemaOf cannot say
					if fs, ok := schema.Fields[f]; ok {
						fs.Optional = true
					}
				}
				o, m := lazyAndMap(t, b.body, nil)
				lv, lerr := schema.LazyCheck().Coerce(o)
				mv, merr := schema.Coerce(m, "")
				// With two faults, which one Coerce names depends on a map's order: any of
				// those it names in many tries will do.
				named := map[string]bool{fmt.Sprint(merr): true}
				for range 300 {
					_, m2 := lazyAndMap(t, b.body, nil)
					_, err := schema.Coerce(m2, "")
					named[fmt.Sprint(err)] = true
				}
				if !named[fmt.Sprint(lerr)] {
					t.Fatalf("lazy: %v; map: %v", lerr, merr)
				}
				if lerr != nil {
					return
				}
				got, err := record.AppendJSON(nil, lv)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := record.AppendJSON(nil, mv)
				if string(got) != string(want) {
					t.Errorf("lazy keeps %s; map %s", got, want)
				}
			})
		}
	}
}
