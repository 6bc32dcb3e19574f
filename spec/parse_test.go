package spec

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/diag"
)

func parseOne(t *testing.T, f Field, yamlText string) (*Value, diag.List) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(f.Name+": "+yamlText), &doc); err != nil {
		t.Fatal(err)
	}
	var diags diag.List
	p := &Parser{File: "t.yaml", Diags: &diags}
	obj := p.ParseObject(doc.Content[0], []Field{f}, "", diag.Pos{File: "t.yaml", Line: 1, Col: 1})
	return obj.Get(f.Name), diags
}

func TestScalars(t *testing.T) {
	cases := []struct {
		name  string
		field Field
		text  string
		check func(v *Value) bool
		err   string // a fragment of the expected diagnostic; "" = valid
	}{
		{"int", Int("n", ""), "42", func(v *Value) bool { return v.IntVal == 42 }, ""},
		{"int with underscores", Int("n", ""), "1_000", func(v *Value) bool { return v.IntVal == 1000 }, ""},
		{"int from string", Int("n", ""), `"42"`, nil, "expected a whole number"},
		{"int below min", Int("n", "").AtLeast(1), "0", nil, "must be at least 1"},
		{"int above max", Int("n", "").AtMost(10), "11", nil, "must be at most 10"},
		{"float from int", Float("x", ""), "2", func(v *Value) bool { return v.FloatVal == 2 }, ""},
		{"float", Float("x", ""), "0.25", func(v *Value) bool { return v.FloatVal == 0.25 }, ""},
		{"float from text", Float("x", ""), "abc", nil, "expected a number"},
		{"bool", Bool("b", ""), "true", func(v *Value) bool { return v.BoolVal }, ""},
		{"bool from yes", Bool("b", ""), "yes", nil, "expected true or false"},
		{"duration", Duration("d", ""), "1m30s", func(v *Value) bool { return v.Dur.Seconds() == 90 }, ""},
		{"duration without unit", Duration("d", ""), "30", nil, "a duration needs a unit: write 30s"},
		{"duration garbage", Duration("d", ""), "soon", nil, "expected a duration"},
		{"size bytes", Size("s", ""), "2048", func(v *Value) bool { return v.IntVal == 2048 }, ""},
		{"size KiB", Size("s", ""), "512KiB", func(v *Value) bool { return v.IntVal == 512*1024 }, ""},
		{"size MB", Size("s", ""), "1.5MB", func(v *Value) bool { return v.IntVal == 1500000 }, ""},
		{"size bad unit", Size("s", ""), "1XB", nil, "expected a size"},
		{"enum canonical case", Enum("e", "", "PLAINTEXT", "SSL"), "ssl", func(v *Value) bool { return v.Str == "SSL" }, ""},
		{"enum misspelt", Enum("e", "", "earliest", "latest"), "latst", nil, "did you mean latest?"},
		{"strings scalar", Strings("s", ""), "a", func(v *Value) bool { return len(v.Items) == 1 }, ""},
		{"strings commas", Strings("s", "").Commas(), "a:1, b:2", func(v *Value) bool { return len(v.Items) == 2 && v.Items[1].Str == "b:2" }, ""},
		{"strings list", Strings("s", ""), "[a, b, c]", func(v *Value) bool { return len(v.Items) == 3 }, ""},
		{"strings empty", Strings("s", "").NotEmpty(), "[]", nil, "must not be empty"},
		{"strings nested", Strings("s", ""), "[[a]]", nil, "expected a string"},
		{"secret hidden", Int("pw", "").Secrets(), "hunter2", nil, "secret value hidden"},
		{"list of mapping", List("l", "", Object("o", "", Int("n", ""))), "{n: 1}", nil, "expected a list"},
		{"map", Map("m", "", String("v", "")), "{a: x, b: y}", func(v *Value) bool { return len(v.Entries) == 2 && v.Entries[1].Key == "b" }, ""},
		{"object unknown key", Object("o", "", Int("count", "")), "{cuont: 1}", nil, `unknown field "cuont" (did you mean count?)`},
		{"object missing required", Object("o", "", Int("n", "").Require()), "{}", nil, `missing required field "n"`},
		{"object default", Object("o", "", Int("n", "").WithDefault("7")), "{}", func(v *Value) bool { return v.Int("n") == 7 && !v.Has("n") }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, diags := parseOne(t, c.field, c.text)
			if c.err == "" {
				if len(diags) > 0 {
					t.Fatal(diags.Err())
				}
				if !c.check(v) {
					t.Errorf("unexpected value %+v", v)
				}
				return
			}
			if len(diags) != 1 || !strings.Contains(diags[0].Msg, c.err) {
				t.Fatalf("want one diagnostic with %q, got %v", c.err, diags.Err())
			}
			if c.field.Secret && strings.Contains(diags[0].Msg, c.text) {
				t.Errorf("secret echoed: %s", diags[0].Msg)
			}
		})
	}
}

func TestMergeKeys(t *testing.T) {
	src := "base: &b {n: 1, s: x}\nobj: {<<: *b, s: y}\n"
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	var diags diag.List
	p := &Parser{File: "t.yaml", Diags: &diags}
	v := p.ParseObject(doc.Content[0].Content[3], []Field{Int("n", ""), String("s", "")}, "obj", diag.Pos{})
	if len(diags) > 0 || v.Int("n") != 1 || v.String("s") != "y" {
		t.Fatalf("merge: n=%d s=%q %v", v.Int("n"), v.String("s"), diags.Err())
	}
}

func TestExprPosInBlockScalar(t *testing.T) {
	src := "e: |\n  a +\n    b\n"
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	var diags diag.List
	p := &Parser{File: "t.yaml", Lines: strings.Split(src, "\n"), Diags: &diags}
	v := p.ParseObject(doc.Content[0], []Field{Expr("e", "any", "")}, "", diag.Pos{}).Get("e")
	if got := v.ExprPos(2, 2); got.Line != 3 || got.Col != 5 {
		t.Errorf("ExprPos(2,2) = %d:%d, want 3:5", got.Line, got.Col)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1": 1, "1KB": 1000, "1kib": 1024, "2 MiB": 2 << 20, "1GB": 1e9, "1_024": 1024} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1TB", "KB", "1.2.3"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestCheckDefaults(t *testing.T) {
	good := []Field{Object("o", "", Int("n", "").WithDefault("3"), List("l", "", Enum("e", "", "a", "b")).WithDefault("[a, b]"))}
	if err := CheckDefaults(good); err != nil {
		t.Errorf("good defaults refused: %v", err)
	}
	for _, bad := range []Field{Int("n", "").WithDefault("x"), Enum("e", "", "a").WithDefault("b"), Duration("d", "").WithDefault("{")} {
		if err := CheckDefaults([]Field{Object("o", "", bad)}); err == nil {
			t.Errorf("bad default %q of %s accepted", bad.Default, bad.Kind)
		}
	}
}
