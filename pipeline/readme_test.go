package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The guide's annotated pipeline example (DESIGN.md's, the user contract) validates as written,
// given its credentials and certificate files, and means what it says. TestDocExamplesValidate
// validates every other example of the docs.
func TestReadmeExampleValidates(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "docs", "guide", "pipeline-file.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "```yaml\nversion: 1\nname: orders")
	if start < 0 {
		t.Fatal("docs/guide/pipeline-file.md has no orders example")
	}
	src := text[start+len("```yaml\n"):]
	src = src[:strings.Index(src, "```")]

	dir := t.TempDir()
	for name, from := range map[string]string{"ca.pem": "ca.pem", "client.pem": "client.pem", "client.key": "client.key"} {
		b, err := os.ReadFile(filepath.Join(root, "testdata/tls", from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, diags := Parse("docs/guide/pipeline-file.md", []byte(src), Options{Env: testEnv, BaseDir: dir})
	if len(diags) > 0 {
		t.Fatalf("the guide's example is invalid:\n%v", diags.Err())
	}
	if p.Kafka.SASL == nil || p.Kafka.SASL.Password != "s3cret-pw" || p.Kafka.TLS == nil || p.Kafka.Protocol != "SASL_SSL" {
		t.Errorf("security not as written: %+v", p.Kafka)
	}
	if len(p.Stages) != 4 || len(p.Sinks) != 2 || p.DLQ == nil {
		t.Errorf("shape: %d stages, %d sinks", len(p.Stages), len(p.Sinks))
	}
}
