package stages_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// buildIn is build with the pipeline file in dir, so that lookup files resolve there.
func buildIn(t *testing.T, dir, stagesYAML string) *pipeline.Pipeline {
	t.Helper()
	end := "  - {name: end, type: branch, routes: [{when: 'key == \"b\"', to: b}, {to: a}]}\n"
	src := "version: 1\nname: t\nsource: {type: kafka, topics: [in]}\nstages:\n" + stagesYAML + end +
		"sinks: [{name: a, type: kafka, topic: a}, {name: b, type: kafka, topic: b}]\n"
	p, diags := pipeline.Parse("t.yaml", []byte(src), pipeline.Options{Env: func(string) (string, bool) { return "", false }, BaseDir: dir})
	if len(diags) > 0 {
		t.Fatalf("invalid test pipeline:\n%v", diags.Err())
	}
	return p
}

func writeTable(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEnrichFromFiles(t *testing.T) {
	dir := t.TempDir()
	writeTable(t, dir, "c.csv", "code,name,vat\nDE,Germany,0.19\nFR,France,0.2\n")
	writeTable(t, dir, "c.jsonl", `{"code":"DE","name":"Germany","vat":0.19}`+"\n"+`{"code":"FR","name":"France","vat":0.2}`+"\n")
	writeTable(t, dir, "c.json", `[{"code":"DE","name":"Germany","vat":0.19},{"code":"FR","name":"France","vat":0.2}]`)
	writeTable(t, dir, "c.yaml", "- {code: DE, name: Germany, vat: 0.19}\n- {code: FR, name: France, vat: 0.2}\n")
	for _, file := range []string{"c.csv", "c.jsonl", "c.json", "c.yaml"} {
		t.Run(file, func(t *testing.T) {
			p := buildIn(t, dir, `  - {name: d, type: decode, schema: {country: string, "*": any}}
  - {name: geo, type: enrich, key: msg.country, file: {path: `+file+`, key_column: code}, into: geo}
  - {name: flat, type: enrich, key: msg.country, file: {path: `+file+`, key_column: code}, merge: true, on_missing: drop}
`)
			outs, err := run(t, p, `{"country": "FR", "id": 1}`, "d", "geo")
			if err != nil || len(outs) != 1 {
				t.Fatalf("%v %v", outs, err)
			}
			geo, _ := outs[0].Rec.Msg.(map[string]any)["geo"].(map[string]any)
			if geo["name"] != "France" {
				t.Errorf("geo = %v", geo)
			}
			outs, err = run(t, p, `{"country": "DE"}`, "d", "flat")
			if err != nil || len(outs) != 1 || outs[0].Rec.Msg.(map[string]any)["name"] != "Germany" {
				t.Fatalf("merge: %v %v", outs, err)
			}
			if outs, err := run(t, p, `{"country": "XX"}`, "d", "flat"); err != nil || len(outs) != 0 {
				t.Errorf("on_missing drop: %v %v", outs, err)
			}
			if outs, err := run(t, p, `{"country": "XX"}`, "d", "geo"); err != nil || len(outs) != 1 || outs[0].Rec.Msg.(map[string]any)["geo"] != nil {
				t.Errorf("on_missing keep: %v %v", outs, err)
			}
		})
	}
}

func TestEnrichMissingToDLQAndExpr(t *testing.T) {
	dir := t.TempDir()
	writeTable(t, dir, "c.csv", "code,name\nDE,Germany\n")
	p := buildIn(t, dir, `  - {name: d, type: decode, schema: {country: string, amount: float}}
  - {name: strict, type: enrich, key: msg.country, file: {path: c.csv, key_column: code}, into: geo, on_missing: dlq}
  - {name: tier, type: enrich, expr: 'msg.amount > 100 ? {"tier": "gold"} : nil', merge: true, on_missing: keep}
`)
	_, err := run(t, p, `{"country": "XX", "amount": 1}`, "d", "strict")
	var me *stages.MissingError
	if !errors.As(err, &me) || me.Key != "XX" {
		t.Fatalf("want a MissingError for XX, got %v", err)
	}
	outs, err := run(t, p, `{"country": "DE", "amount": 150}`, "d", "tier")
	if err != nil || outs[0].Rec.Msg.(map[string]any)["tier"] != "gold" {
		t.Fatalf("expr enrich: %v %v", outs, err)
	}
	outs, err = run(t, p, `{"country": "DE", "amount": 5}`, "d", "tier")
	if err != nil || outs[0].Rec.Msg.(map[string]any)["tier"] != nil {
		t.Fatalf("expr enrich, missing: %v %v", outs, err)
	}
}

// With reload, a changed file is picked up; a broken one keeps the old table.
func TestEnrichReload(t *testing.T) {
	dir := t.TempDir()
	writeTable(t, dir, "c.csv", "code,name\nDE,Germany\n")
	p := buildIn(t, dir, `  - {name: d, type: decode}
  - {name: geo, type: enrich, key: msg.c, file: {path: c.csv, key_column: code, reload: 1ms}, into: geo}
`)
	name := func(body string) any {
		outs, err := run(t, p, body, "d", "geo")
		if err != nil {
			t.Fatal(err)
		}
		g, _ := outs[0].Rec.Msg.(map[string]any)["geo"].(map[string]any)
		return g["name"]
	}
	if got := name(`{"c": "DE"}`); got != "Germany" {
		t.Fatalf("before: %v", got)
	}
	writeTable(t, dir, "c.csv", "code,name\nDE,Deutschland\n")
	future := time.Now().Add(time.Minute) // a new modification time, whatever the file system's resolution
	if err := os.Chtimes(filepath.Join(dir, "c.csv"), future, future); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for name(`{"c": "DE"}`) != "Deutschland" {
		if time.Now().After(deadline) {
			t.Fatal("the changed file was not reloaded")
		}
		time.Sleep(2 * time.Millisecond)
	}
	writeTable(t, dir, "c.csv", "code,name\nDE,\"broken\n")
	later := future.Add(time.Minute)
	_ = os.Chtimes(filepath.Join(dir, "c.csv"), later, later)
	for i := 0; i < 20; i++ {
		if got := name(`{"c": "DE"}`); got != "Deutschland" {
			t.Fatalf("a broken file replaced the table: %v", got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
