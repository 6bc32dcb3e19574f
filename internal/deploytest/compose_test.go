package deploytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// composeDir holds the Compose file and what it mounts of its own.
const composeDir = "deploy/compose"

// composeFile is what the test reads of deploy/compose/compose.yaml. Commands must be lists
// (the exec form): a string would not decode.
type composeFile struct {
	Name     string
	Services map[string]composeService
}

type composeService struct {
	Image string
	Build *struct {
		Context    string
		Dockerfile string
	}
	Entrypoint  []string
	Command     []string
	Environment map[string]string
	Volumes     []string
	Ports       []string
	Expose      []string
	DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
	Deploy      struct {
		Replicas  int
		Resources struct{ Limits struct{ Memory string } }
	}
	StopGracePeriod string `yaml:"stop_grace_period"`
	Restart         string
	ContainerName   string `yaml:"container_name"`
	Healthcheck     *struct{ Test []string }
}

// mount is a bind mount: a file of the repository (relative to the Compose file) in a container.
type mount struct{ host, container string }

// mounts reads a service's short-syntax volumes; every one must be a bind mount of a path
// relative to the Compose file.
func (s composeService) mounts(t *testing.T) []mount {
	t.Helper()
	var out []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			t.Errorf("volume %q: want ./FILE:/PATH[:ro], a file of the repository", v)
			continue
		}
		out = append(out, mount{filepath.Join(root, composeDir, parts[0]), parts[1]})
	}
	return out
}

// mounted is the repository file a service mounts at container, failing when none.
func (s composeService) mounted(t *testing.T, container string) string {
	t.Helper()
	for _, m := range s.mounts(t) {
		if m.container == container {
			return m.host
		}
	}
	t.Fatalf("nothing mounted at %s (volumes %q)", container, s.Volumes)
	return ""
}

func readCompose(t *testing.T) *composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal(readRepoFile(t, filepath.Join(composeDir, "compose.yaml")), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return &c
}

// composePipeline validates the pipeline file the pipeline service mounts, with the service's
// environment.
func composePipeline(t *testing.T, c *composeFile) (*pipeline.Pipeline, []byte) {
	t.Helper()
	svc := c.Services["pipeline"]
	path := svc.mounted(t, pipelinePath)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return loadPipeline(t, path, src, svc.Environment), src
}

func TestCompose(t *testing.T) {
	c := readCompose(t)
	for _, c2 := range []struct {
		name  string
		check func(t *testing.T, c *composeFile)
	}{
		{"the services of the deployment", func(t *testing.T, c *composeFile) {
			var got []string
			for name := range c.Services {
				got = append(got, name)
			}
			slices.Sort(got)
			want := []string{"feeder", "grafana", "kafka", "pipeline", "prometheus", "topics"}
			if !slices.Equal(got, want) {
				t.Errorf("services %q, want %q", got, want)
			}
		}},
		{"Kafka in KRaft mode, advertised where the pipeline connects", func(t *testing.T, c *composeFile) {
			k := c.Services["kafka"]
			env := k.Environment
			if !strings.HasPrefix(k.Image, "apache/kafka:") {
				t.Errorf("kafka image %q, want the official apache/kafka", k.Image)
			}
			roles := strings.Split(env["KAFKA_PROCESS_ROLES"], ",")
			if !slices.Contains(roles, "broker") || !slices.Contains(roles, "controller") {
				t.Errorf("KAFKA_PROCESS_ROLES %q: want broker,controller (KRaft, one node)", env["KAFKA_PROCESS_ROLES"])
			}
			for name := range env {
				if strings.Contains(name, "ZOOKEEPER") {
					t.Errorf("%s: KRaft needs no ZooKeeper", name)
				}
			}
			for _, name := range []string{"KAFKA_NODE_ID", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_CONTROLLER_LISTENER_NAMES", "CLUSTER_ID"} {
				if env[name] == "" {
					t.Errorf("kafka: %s is not set", name)
				}
			}
			if env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] != "false" {
				t.Error("kafka: topics must come from the topics service with the file's settings, not from auto-creation")
			}
			brokers := c.Services["pipeline"].Environment["KAFKA_BROKERS"]
			if !slices.Contains(strings.Split(env["KAFKA_ADVERTISED_LISTENERS"], ","), "PLAINTEXT://"+brokers) {
				t.Errorf("the pipeline connects to %q, which KAFKA_ADVERTISED_LISTENERS %q does not advertise", brokers, env["KAFKA_ADVERTISED_LISTENERS"])
			}
			if k.Healthcheck == nil || len(k.Healthcheck.Test) == 0 {
				t.Error("kafka has no healthcheck: the topics service cannot wait for it")
			}
		}},
		{"a one-shot job creates the topics once Kafka is up", func(t *testing.T, c *composeFile) {
			s := c.Services["topics"]
			checkArgs(t, s.Command, pipelinePath)
			if s.Command[0] != "topics" {
				t.Errorf("topics service runs %q, want topics create", s.Command)
			}
			if d := s.DependsOn["kafka"].Condition; d != "service_healthy" {
				t.Errorf("topics depends on kafka with condition %q, want service_healthy", d)
			}
			if s.Restart != "no" {
				t.Errorf("topics restart %q, want \"no\": it runs once", s.Restart)
			}
			if p, q := s.mounted(t, pipelinePath), c.Services["pipeline"].mounted(t, pipelinePath); p != q {
				t.Errorf("topics creates the topics of %s, the pipeline runs %s", p, q)
			}
		}},
		{"the pipeline in 3 replicas of one consumer group", func(t *testing.T, c *composeFile) {
			s := c.Services["pipeline"]
			checkArgs(t, s.Command, pipelinePath)
			if s.Command[0] != "run" {
				t.Errorf("pipeline service runs %q, want run", s.Command)
			}
			if s.Deploy.Replicas != 3 {
				t.Errorf("deploy.replicas %d, want 3", s.Deploy.Replicas)
			}
			if s.ContainerName != "" || len(s.Ports) > 0 {
				t.Error("container_name or host ports: replicas would clash over them")
			}
			for _, dep := range []string{"topics"} {
				if s.DependsOn[dep].Condition != "service_completed_successfully" {
					t.Errorf("pipeline must wait for %s to complete", dep)
				}
			}
			p, _ := composePipeline(t, c)
			src := p.KafkaSource()
			// Every replica runs the same file with the same environment: the group must not
			// come from anything that differs between them, and instance_id would be shared
			// (and fence all but one member).
			if raw := dig(yamlMap(t, readRepoFile(t, filepath.Join(composeDir, "orders.yaml"))), "source", "group"); raw != src.Group {
				t.Errorf("group %q as written, %q in a replica: want one fixed group", raw, src.Group)
			}
			if src.InstanceID != "" {
				t.Errorf("instance_id %q is the same in every replica: all but one would be fenced", src.InstanceID)
			}
			plans := p.TopicPlans()
			if plans[0].Name != src.Topics[0] || int(plans[0].Partitions) < s.Deploy.Replicas {
				t.Errorf("source topic %s created with %d partitions: fewer than the %d replicas, some would idle", plans[0].Name, plans[0].Partitions, s.Deploy.Replicas)
			}
		}},
		{"the pipeline is the orders example", func(t *testing.T, c *composeFile) {
			path := c.Services["pipeline"].mounted(t, pipelinePath)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkSameAsOrders(t, path, src)
		}},
		{"stop_grace_period covers the drain", func(t *testing.T, c *composeFile) {
			p, _ := composePipeline(t, c)
			grace, err := time.ParseDuration(c.Services["pipeline"].StopGracePeriod)
			if err != nil {
				t.Fatalf("stop_grace_period: %v (Compose's default, 10s, would kill the drain)", err)
			}
			if drain := p.KafkaSource().DrainTimeout; grace <= drain+drainSlack {
				t.Errorf("stop_grace_period %v: want more than drain_timeout %v + %v", grace, drain, drainSlack)
			}
		}},
		{"a memory limit the budget fits in", func(t *testing.T, c *composeFile) {
			p, _ := composePipeline(t, c)
			limit := c.Services["pipeline"].Deploy.Resources.Limits.Memory
			need := memoryNeed(p, int64(p.TopicPlans()[0].Partitions))
			if limit == "" || quantity(t, limit) < need {
				t.Errorf("memory limit %q: want at least the %d MiB the budget needs (deploy/k8s/statefulset.yaml)", limit, need/mib)
			}
		}},
		{"the metrics port is exposed and served", func(t *testing.T, c *composeFile) {
			s := c.Services["pipeline"]
			port := metricsPort(t, s.Command)
			if !slices.Contains(s.Expose, strconv.Itoa(port)) {
				t.Errorf("expose %q: want the metrics port %d", s.Expose, port)
			}
			p, _ := composePipeline(t, c)
			checkServedPaths(t, p, "/metrics", "/healthz", "/readyz")
		}},
		{"every mounted file is in the repository", func(t *testing.T, c *composeFile) {
			for name, s := range c.Services {
				for _, m := range s.mounts(t) {
					if st, err := os.Stat(m.host); err != nil || st.IsDir() {
						t.Errorf("%s mounts %s, which is not a file of the repository: %v", name, m.host, err)
					}
				}
			}
		}},
		{"the pipeline image builds from the Dockerfile", func(t *testing.T, c *composeFile) {
			for _, name := range []string{"topics", "pipeline"} {
				s := c.Services[name]
				if s.Image != c.Services["pipeline"].Image || s.Build == nil {
					t.Errorf("%s: image %q, build %v: want the pipeline's image, with a build", name, s.Image, s.Build)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, composeDir, s.Build.Context, s.Build.Dockerfile)); err != nil {
					t.Errorf("%s: build: %v", name, err)
				}
			}
		}},
		{"Prometheus scrapes every replica", func(t *testing.T, c *composeFile) {
			var prom struct {
				ScrapeConfigs []struct {
					MetricsPath  string `yaml:"metrics_path"`
					DNSSDConfigs []struct {
						Names []string
						Type  string
						Port  int
					} `yaml:"dns_sd_configs"`
				} `yaml:"scrape_configs"`
			}
			path := c.Services["prometheus"].mounted(t, "/etc/prometheus/prometheus.yml")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(b, &prom); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			port := metricsPort(t, c.Services["pipeline"].Command)
			for _, sc := range prom.ScrapeConfigs {
				for _, sd := range sc.DNSSDConfigs {
					// Docker's DNS answers a service's name with an A record per replica.
					if slices.Contains(sd.Names, "pipeline") && sd.Type == "A" && sd.Port == port &&
						(sc.MetricsPath == "" || sc.MetricsPath == "/metrics") {
						return
					}
				}
			}
			t.Errorf("%s: no dns_sd_configs of type A on the name pipeline, port %d, path /metrics", path, port)
		}},
		{"Grafana has Prometheus and the dashboard", func(t *testing.T, c *composeFile) {
			g := c.Services["grafana"]
			var ds struct {
				Datasources []struct{ Type, URL string } `yaml:"datasources"`
			}
			var dash struct {
				Providers []struct {
					Type    string
					Options struct{ Path string }
				}
			}
			for path, into := range map[string]any{
				"/etc/grafana/provisioning/datasources/pythia-pipe.yaml": &ds,
				"/etc/grafana/provisioning/dashboards/pythia-pipe.yaml":  &dash,
			} {
				file := g.mounted(t, path)
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if err := yaml.Unmarshal(b, into); err != nil {
					t.Fatalf("%s: %v", file, err)
				}
			}
			if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" ||
				!slices.Contains(c.Services["prometheus"].Ports, "9090:9090") {
				t.Errorf("datasources %+v: want the prometheus service at http://prometheus:9090", ds.Datasources)
			}
			if len(dash.Providers) != 1 || dash.Providers[0].Type != "file" {
				t.Fatalf("dashboard providers %+v: want one of type file", dash.Providers)
			}
			json1 := g.mounted(t, dash.Providers[0].Options.Path+"/pythia-pipe.json")
			if want := filepath.Join(root, "deploy/grafana/pythia-pipe.json"); json1 != want {
				t.Errorf("the dashboard provisioned is %s, want %s", json1, want)
			}
			var d struct{ Title string }
			if err := json.Unmarshal(readRepoFile(t, "deploy/grafana/pythia-pipe.json"), &d); err != nil || d.Title == "" {
				t.Errorf("deploy/grafana/pythia-pipe.json: %v (title %q)", err, d.Title)
			}
		}},
		{"the feeder produces sample orders into the source topic", func(t *testing.T, c *composeFile) {
			f := c.Services["feeder"]
			feed := f.mounted(t, "/feed/orders-feed.jsonl")
			if want := filepath.Join(root, "testdata/orders-feed.jsonl"); feed != want {
				t.Errorf("the feeder reads %s, want %s", feed, want)
			}
			p, _ := composePipeline(t, c)
			script := strings.Join(f.Command, " ")
			for _, want := range []string{
				"kafka-console-producer.sh", "--topic " + p.KafkaSource().Topics[0],
				"--bootstrap-server " + c.Services["pipeline"].Environment["KAFKA_BROKERS"], "< /feed/orders-feed.jsonl",
				"parse.key=true", // the feed is KEY<TAB>VALUE
			} {
				if !strings.Contains(script, want) {
					t.Errorf("the feeder's command lacks %q:\n%s", want, script)
				}
			}
			if f.DependsOn["topics"].Condition != "service_completed_successfully" {
				t.Error("the feeder must wait for the topics (auto-creation is off)")
			}
		}},
	} {
		t.Run(c2.name, func(t *testing.T) { c2.check(t, c) })
	}
}
