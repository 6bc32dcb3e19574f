package deploytest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
	"github.com/pythia-pipe/pythia-pipe/metrics"
	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// root is the repository, from this package's folder.
const root = "../.."

// binary is the pythia-pipe binary whose CLI the deployment files must match, built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "pythia-deploytest")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		// Built as the other packages' tests build it, so that the build cache serves both.
		if binary, err = testproc.Build(root, dir, raceEnabled); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

// drainSlack is how long past drain_timeout a SIGTERM'd pythia-pipe may take to exit
// (docs/guide/delivery.md: "within drain_timeout + 8 s, even while a sink waits"). A grace
// period before the SIGKILL must cover both.
const drainSlack = 8 * time.Second

// pipelinePath is where the image's default command reads the pipeline file.
const pipelinePath = "/etc/pythia/pipeline.yaml"

// commandArity is how many positional arguments each command the deployment files use takes,
// the command's own words included.
var commandArity = map[string]int{"run": 2, "topics": 3}

// checkArgs fails unless args, as a container passes them to the image's entrypoint, are a
// command of the CLI with flags it defines, reading the pipeline file at file: the built binary
// parses them (with --help appended, so that it stops before reading the file) and must accept
// them.
func checkArgs(t *testing.T, args []string, file string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatal("no arguments: the image's default command would run instead")
	}
	var pos []string
	for i := 0; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			if !strings.Contains(args[i], "=") {
				i++ // every flag of run and topics create takes a value
			}
			continue
		}
		pos = append(pos, args[i])
	}
	if n, ok := commandArity[pos[0]]; !ok || len(pos) != n || pos[n-1] != file {
		t.Errorf("pythia-pipe %s: want a command reading %s, as in `run %[2]s` or `topics create %[2]s`", strings.Join(args, " "), file)
	}
	if pos[0] == "topics" && pos[1] != "create" {
		t.Errorf("pythia-pipe %s: topics has only create", strings.Join(args, " "))
	}
	out, err := exec.Command(binary, append(append([]string{}, args...), "--help")...).CombinedOutput()
	if err != nil {
		t.Errorf("pythia-pipe %s: the CLI refuses these arguments (%v):\n%s", strings.Join(args, " "), err, out)
	}
}

// flagValue is the value of --name (or -name) in args, or "".
func flagValue(args []string, name string) string {
	for i, a := range args {
		a = "-" + strings.TrimLeft(a, "-")
		switch {
		case a == "-"+name && i+1 < len(args):
			return args[i+1]
		case strings.HasPrefix(a, "-"+name+"="):
			return strings.TrimPrefix(a, "-"+name+"=")
		}
	}
	return ""
}

// metricsPort is the port of --metrics-addr in args.
func metricsPort(t *testing.T, args []string) int {
	t.Helper()
	addr := flagValue(args, "metrics-addr")
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("--metrics-addr %q in %q: %v", addr, args, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n == 0 {
		t.Fatalf("--metrics-addr %q: want a fixed port", addr)
	}
	return n
}

// loadPipeline validates the pipeline file at path, with env as its environment, as `run` would
// load it; warnings fail the test too.
func loadPipeline(t *testing.T, path string, src []byte, env map[string]string) *pipeline.Pipeline {
	t.Helper()
	p, diags := pipeline.Parse(path, src, pipeline.Options{
		Env:     func(name string) (string, bool) { v, ok := env[name]; return v, ok },
		BaseDir: filepath.Dir(path),
	})
	if p == nil {
		t.Fatalf("%s does not validate:\n%v", path, diags.Err())
	}
	if len(p.Warnings) > 0 {
		t.Errorf("%s: warnings:\n%v", path, p.Warnings.Err())
	}
	return p
}

// checkSameAsOrders fails unless the pipeline file src does what pipelines/orders.yaml does:
// the same name, source topics and group, stages, and sinks and DLQ (their create settings
// aside), so that a deployment's copy does not drift from the example.
func checkSameAsOrders(t *testing.T, path string, src []byte) {
	t.Helper()
	orders, err := os.ReadFile(filepath.Join(root, "pipelines/orders.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	if err := yaml.Unmarshal(orders, &want); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(src, &got); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, c := range []struct {
		name string
		get  func(m map[string]any) any
	}{
		{"name", func(m map[string]any) any { return m["name"] }},
		{"source.topics", func(m map[string]any) any { return dig(m, "source", "topics") }},
		{"source.group", func(m map[string]any) any { return dig(m, "source", "group") }},
		{"stages", func(m map[string]any) any { return m["stages"] }},
		{"sinks", func(m map[string]any) any { return withoutCreate(m["sinks"]) }},
		{"dlq", func(m map[string]any) any { return withoutCreate(m["dlq"]) }},
	} {
		if w, g := c.get(want), c.get(got); !reflect.DeepEqual(w, g) {
			t.Errorf("%s: %s differs from pipelines/orders.yaml's:\n got %v\nwant %v", path, c.name, g, w)
		}
	}
}

// withoutCreate is v with the create settings of its mappings left out, at the first level.
func withoutCreate(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if k != "create" {
				out[k] = x
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = withoutCreate(x)
		}
		return out
	}
	return v
}

// yamlMap decodes a YAML mapping.
func yamlMap(t *testing.T, src []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(src, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// dig follows keys through nested mappings.
func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// checkServedPaths fails unless the metrics server answers each path (with any status but 404):
// probes must ask for what it serves.
func checkServedPaths(t *testing.T, p *pipeline.Pipeline, paths ...string) {
	t.Helper()
	h := metrics.New(p).Handler()
	for _, path := range paths {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code == http.StatusNotFound {
			t.Errorf("the metrics server does not serve %s (404)", path)
		}
	}
}

// quantity reads a Kubernetes quantity in bytes (Ki, Mi, Gi or k, M, G) or a GOMEMLIMIT (KiB,
// MiB, GiB).
func quantity(t *testing.T, s string) int64 {
	t.Helper()
	m := regexp.MustCompile(`^(\d+)(Ki|Mi|Gi|k|M|G|KiB|MiB|GiB)?$`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("quantity %q: not understood", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n * map[string]int64{"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1e3, "M": 1e6, "G": 1e9,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
}

const mib = 1 << 20

// memoryNeed is the memory a pipeline's pod needs, the arithmetic of statefulset.yaml: what
// the source may hold (its budget, a fetch, what each paused partition holds: all the
// partitions at worst), twice over for Go's GC, plus what the rest of the process takes
// (measured: docs/guide/performance.md).
func memoryNeed(p *pipeline.Pipeline, partitions int64) int64 {
	const rest = 64 * mib
	s := p.KafkaSource()
	return 2*(s.MaxPendingBytes+s.FetchMaxBytes+partitions*s.FetchDefaultBytes) + rest
}

// readRepoFile reads a file of the repository.
func readRepoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
