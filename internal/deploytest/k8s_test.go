package deploytest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pythia-pipe/pythia-pipe/pipeline"
)

// Kubernetes objects, as far as the test reads them.
type (
	k8sObject struct {
		Kind     string
		Metadata struct {
			Name        string
			Labels      map[string]string
			Annotations map[string]string
		}
		Data map[string]string // ConfigMap, Secret (base64)
		node yaml.Node
	}
	statefulSet struct {
		Spec struct {
			ServiceName string `yaml:"serviceName"`
			Replicas    int
			Selector    struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			}
			Template struct {
				Metadata struct{ Labels, Annotations map[string]string }
				Spec     podSpec
			}
		}
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot bool   `yaml:"runAsNonRoot"`
			RunAsUser    *int64 `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		InitContainers []container `yaml:"initContainers"`
		Containers     []container
		Volumes        []struct {
			Name      string
			ConfigMap *struct{ Name string } `yaml:"configMap"`
		}
	}
	container struct {
		Name    string
		Image   string
		Command []string
		Args    []string
		Ports   []struct {
			Name          string
			ContainerPort int `yaml:"containerPort"`
		}
		Env []struct {
			Name      string
			Value     string
			ValueFrom *struct {
				SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
				FieldRef     *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		}
		Resources struct{ Requests, Limits map[string]string }
		Probes    map[string]*probe `yaml:",inline"`
		Mounts    []struct {
			Name      string
			MountPath string `yaml:"mountPath"`
			SubPath   string `yaml:"subPath"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string
			Port string // a number or a port's name
		} `yaml:"httpGet"`
	}
	podDisruptionBudget struct {
		Spec struct {
			MaxUnavailable *int `yaml:"maxUnavailable"`
			MinAvailable   *int `yaml:"minAvailable"`
			Selector       struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			}
		}
	}
	service struct {
		Spec struct {
			ClusterIP string            `yaml:"clusterIP"`
			Selector  map[string]string `yaml:"selector"`
		}
	}
)

// renderK8s renders deploy/k8s with kubectl kustomize ($KUBECTL, or kubectl on the PATH: a
// missing kubectl fails the test) and returns its objects.
func renderK8s(t *testing.T) []*k8sObject {
	t.Helper()
	kubectl := os.Getenv("KUBECTL")
	if kubectl == "" {
		var err error
		if kubectl, err = exec.LookPath("kubectl"); err != nil {
			t.Fatal("kubectl is not installed, and the Kubernetes manifests are checked as kubectl renders them: " +
				"apt-get install -y kubernetes-client (.ci/run does), or set KUBECTL")
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", root+"/deploy/k8s")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize deploy/k8s: %v\n%s", err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Errorf("kubectl kustomize deploy/k8s warns:\n%s", s)
	}
	var objs []*k8sObject
	dec := yaml.NewDecoder(&stdout)
	for {
		var o k8sObject
		err := dec.Decode(&o.node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := o.node.Decode(&o); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, &o)
	}
	return objs
}

// k8sManifests is the rendered deploy/k8s, each kind decoded.
type k8sManifests struct {
	objs       []*k8sObject
	configMap  *k8sObject
	secret     *k8sObject
	service    service
	serviceObj *k8sObject
	sts        statefulSet
	stsObj     *k8sObject
	pdb        podDisruptionBudget
}

// one finds the one object of kind, failing when there is not exactly one.
func (m *k8sManifests) one(t *testing.T, kind string, into any) *k8sObject {
	t.Helper()
	var found []*k8sObject
	for _, o := range m.objs {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(found), kind)
	}
	if into != nil {
		if err := found[0].node.Decode(into); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
	}
	return found[0]
}

// pipelineContainer is the container that runs the pipeline.
func (m *k8sManifests) pipelineContainer(t *testing.T) container {
	t.Helper()
	cs := m.sts.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	return cs[0]
}

// env is a container's environment in pod podName: values, Secret keys (decoded), field refs.
func (m *k8sManifests) env(t *testing.T, c container, podName string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != m.secret.Metadata.Name {
				t.Fatalf("%s: %s from Secret %s, which kustomize does not make (it makes %s)", c.Name, e.Name, ref.Name, m.secret.Metadata.Name)
			}
			v, ok := m.secret.Data[ref.Key]
			if !ok {
				t.Fatalf("%s: %s from key %s, which Secret %s lacks", c.Name, e.Name, ref.Key, ref.Name)
			}
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name] = string(b)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			out[e.Name] = podName
		default:
			t.Fatalf("%s: %s: a source of values the test does not know", c.Name, e.Name)
		}
	}
	return out
}

// pipelineFile is the pipeline file a container's args name, as its volume mounts it from the
// ConfigMap, validated with the container's environment in pod podName.
func (m *k8sManifests) pipelineFile(t *testing.T, c container, podName string) (*pipeline.Pipeline, []byte) {
	t.Helper()
	checkArgs(t, c.Args, pipelinePath)
	var volume string
	for _, mnt := range c.Mounts {
		if mnt.MountPath == path.Dir(pipelinePath) && mnt.SubPath == "" {
			volume = mnt.Name
		}
	}
	var cm string
	for _, v := range m.sts.Spec.Template.Spec.Volumes {
		if v.Name == volume && v.ConfigMap != nil {
			cm = v.ConfigMap.Name
		}
	}
	if cm == "" || cm != m.configMap.Metadata.Name {
		t.Fatalf("%s: %s is not mounted from the ConfigMap %s (volume %q, ConfigMap %q)", c.Name, path.Dir(pipelinePath), m.configMap.Metadata.Name, volume, cm)
	}
	src, ok := m.configMap.Data[path.Base(pipelinePath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm, path.Base(pipelinePath))
	}
	return loadPipeline(t, "configmap:"+path.Base(pipelinePath), []byte(src), m.env(t, c, podName)), []byte(src)
}

func TestKubernetes(t *testing.T) {
	m := &k8sManifests{objs: renderK8s(t)}
	m.configMap = m.one(t, "ConfigMap", nil)
	m.secret = m.one(t, "Secret", nil)
	m.serviceObj = m.one(t, "Service", &m.service)
	m.stsObj = m.one(t, "StatefulSet", &m.sts)
	m.one(t, "PodDisruptionBudget", &m.pdb)
	pod := m.sts.Spec.Template
	const pod0 = "pythia-pipe-0" // the first pod's name: the StatefulSet's, -0

	for _, c := range []struct {
		name  string
		check func(t *testing.T)
	}{
		{"the objects kustomize makes", func(t *testing.T) {
			if len(m.objs) != 5 {
				t.Errorf("%d objects, want ConfigMap, Secret, Service, StatefulSet, PodDisruptionBudget", len(m.objs))
			}
			// Generated names carry a hash of the content, so that a change rolls the pods.
			for _, o := range []*k8sObject{m.configMap, m.secret} {
				if !regexp.MustCompile(`^pythia-pipe-[a-z]+-[a-z0-9]{10}$`).MatchString(o.Metadata.Name) {
					t.Errorf("%s %s: want a generated name with its content's hash", o.Kind, o.Metadata.Name)
				}
			}
			if m.stsObj.Metadata.Name+"-0" != pod0 {
				t.Errorf("the StatefulSet %s names its first pod %s-0, the test assumes %s", m.stsObj.Metadata.Name, m.stsObj.Metadata.Name, pod0)
			}
		}},
		{"each container runs a command of the CLI on the ConfigMap's pipeline", func(t *testing.T) {
			for _, c := range append(append([]container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
				if len(c.Command) > 0 {
					t.Errorf("%s: command %q replaces the image's entrypoint", c.Name, c.Command)
				}
				if c.Image != "localhost/pythia-pipe:latest" {
					t.Errorf("%s: image %q, want the image make image builds (kustomize's images: names it)", c.Name, c.Image)
				}
				m.pipelineFile(t, c, pod0)
			}
			if c := m.pipelineContainer(t); c.Args[0] != "run" {
				t.Errorf("the pipeline container runs %q", c.Args)
			}
		}},
		{"the ConfigMap's pipeline is the orders example", func(t *testing.T) {
			_, src := m.pipelineFile(t, m.pipelineContainer(t), pod0)
			checkSameAsOrders(t, "the ConfigMap's pipeline.yaml", src)
			if string(src) != string(readRepoFile(t, "deploy/k8s/pipeline.yaml")) {
				t.Error("the ConfigMap does not hold deploy/k8s/pipeline.yaml as it is")
			}
		}},
		{"SASL credentials from the Secret, as environment variables", func(t *testing.T) {
			p, _ := m.pipelineFile(t, m.pipelineContainer(t), pod0)
			env := m.env(t, m.pipelineContainer(t), pod0)
			k := p.Kafka
			if k.SASL == nil || !strings.HasPrefix(k.Protocol, "SASL_") {
				t.Fatalf("kafka.security protocol %s: want SASL", k.Protocol)
			}
			for _, name := range []string{"KAFKA_USER", "KAFKA_PASSWORD"} {
				if _, ok := m.secret.Data[name]; !ok {
					t.Errorf("the Secret has no %s", name)
				}
				if env[name] == "" {
					t.Errorf("%s is not in the container's environment", name)
				}
			}
			if k.SASL.Username != env["KAFKA_USER"] || k.SASL.Password != env["KAFKA_PASSWORD"] {
				t.Error("the pipeline's SASL user and password are not the Secret's")
			}
		}},
		{"static membership: instance_id is the pod's name", func(t *testing.T) {
			for _, name := range []string{pod0, "pythia-pipe-2"} {
				p, _ := m.pipelineFile(t, m.pipelineContainer(t), name)
				if got := p.KafkaSource().InstanceID; got != name {
					t.Errorf("in pod %s, instance_id is %q", name, got)
				}
			}
			if m.sts.Spec.ServiceName != m.serviceObj.Metadata.Name || m.service.Spec.ClusterIP != "None" {
				t.Errorf("serviceName %q: want the headless Service %s", m.sts.Spec.ServiceName, m.serviceObj.Metadata.Name)
			}
			if !sameLabels(m.service.Spec.Selector, pod.Metadata.Labels) {
				t.Errorf("the Service selects %v, the pods are %v", m.service.Spec.Selector, pod.Metadata.Labels)
			}
		}},
		{"one consumer group, no more pods than partitions", func(t *testing.T) {
			p0, _ := m.pipelineFile(t, m.pipelineContainer(t), pod0)
			p1, _ := m.pipelineFile(t, m.pipelineContainer(t), "pythia-pipe-1")
			if g0, g1 := p0.KafkaSource().Group, p1.KafkaSource().Group; g0 != g1 {
				t.Errorf("groups %q and %q: want one", g0, g1)
			}
			if parts := p0.TopicPlans()[0].Partitions; int(parts) < m.sts.Spec.Replicas {
				t.Errorf("%d replicas for %d partitions: some would idle", m.sts.Spec.Replicas, parts)
			}
		}},
		{"probes on the metrics server's paths and port", func(t *testing.T) {
			c := m.pipelineContainer(t)
			port := metricsPort(t, c.Args)
			named := map[string]int{}
			for _, p := range c.Ports {
				named[p.Name] = p.ContainerPort
			}
			for kind, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"} {
				pr := c.Probes[kind]
				if pr == nil || pr.HTTPGet == nil {
					t.Errorf("no %s over HTTP", kind)
					continue
				}
				got, err := strconv.Atoi(pr.HTTPGet.Port)
				if err != nil {
					got = named[pr.HTTPGet.Port]
				}
				if pr.HTTPGet.Path != path || got != port {
					t.Errorf("%s: %s on port %s (%d), want %s on %d (--metrics-addr)", kind, pr.HTTPGet.Path, pr.HTTPGet.Port, got, path, port)
				}
			}
			p, _ := m.pipelineFile(t, c, pod0)
			checkServedPaths(t, p, "/readyz", "/healthz", "/metrics")
		}},
		{"terminationGracePeriodSeconds covers the drain", func(t *testing.T) {
			p, _ := m.pipelineFile(t, m.pipelineContainer(t), pod0)
			g := pod.Spec.TerminationGracePeriodSeconds
			if g == nil {
				t.Fatal("no terminationGracePeriodSeconds: Kubernetes' default, 30s, is not longer than the drain")
			}
			if grace, drain := time.Duration(*g)*time.Second, p.KafkaSource().DrainTimeout; grace <= drain+drainSlack {
				t.Errorf("terminationGracePeriodSeconds %v: want more than drain_timeout %v + %v", grace, drain, drainSlack)
			}
		}},
		{"memory from the budget", func(t *testing.T) {
			c := m.pipelineContainer(t)
			p, _ := m.pipelineFile(t, c, pod0)
			need := memoryNeed(p, int64(p.TopicPlans()[0].Partitions))
			req, lim := quantity(t, c.Resources.Requests["memory"]), quantity(t, c.Resources.Limits["memory"])
			if req < need {
				t.Errorf("memory request %s: below the %d MiB the budget needs", c.Resources.Requests["memory"], need/mib)
			}
			if lim < req {
				t.Errorf("memory limit %s below the request %s", c.Resources.Limits["memory"], c.Resources.Requests["memory"])
			}
			gomemlimit := m.env(t, c, pod0)["GOMEMLIMIT"]
			if gml := quantity(t, gomemlimit); gml <= need || gml >= lim {
				t.Errorf("GOMEMLIMIT %s: want it between what the budget needs (%d MiB; below, the GC would run all the time) and the limit %s",
					gomemlimit, need/mib, c.Resources.Limits["memory"])
			}
			if c.Resources.Requests["cpu"] == "" {
				t.Error("no CPU request")
			}
		}},
		{"a PodDisruptionBudget over the pods", func(t *testing.T) {
			if !sameLabels(m.pdb.Spec.Selector.MatchLabels, pod.Metadata.Labels) || !sameLabels(m.sts.Spec.Selector.MatchLabels, pod.Metadata.Labels) {
				t.Errorf("the budget selects %v, the StatefulSet %v, the pods are %v", m.pdb.Spec.Selector.MatchLabels, m.sts.Spec.Selector.MatchLabels, pod.Metadata.Labels)
			}
			allowed := 0
			switch pdb := m.pdb.Spec; {
			case pdb.MaxUnavailable != nil:
				allowed = *pdb.MaxUnavailable
			case pdb.MinAvailable != nil:
				allowed = m.sts.Spec.Replicas - *pdb.MinAvailable
			}
			if allowed < 1 || allowed >= m.sts.Spec.Replicas {
				t.Errorf("the budget lets %d of %d pods go at once: want at least 1 (drains must proceed) and fewer than all", allowed, m.sts.Spec.Replicas)
			}
		}},
		{"Prometheus scrape annotations", func(t *testing.T) {
			a := pod.Metadata.Annotations
			port := metricsPort(t, m.pipelineContainer(t).Args)
			want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": strconv.Itoa(port), "prometheus.io/path": "/metrics"}
			for k, v := range want {
				if a[k] != v {
					t.Errorf("annotation %s: %q, want %q", k, a[k], v)
				}
			}
		}},
		{"runs as the image's non-root user", func(t *testing.T) {
			sc := pod.Spec.SecurityContext
			user := the(t, parseContainerfile(string(readRepoFile(t, "deploy/image/Containerfile"))), "USER").args
			uid, _, _ := strings.Cut(user, ":")
			if !sc.RunAsNonRoot || sc.RunAsUser == nil || fmt.Sprint(*sc.RunAsUser) != uid {
				t.Errorf("securityContext runAsNonRoot %v, runAsUser %v: want true and the image's user %s", sc.RunAsNonRoot, sc.RunAsUser, uid)
			}
		}},
	} {
		t.Run(c.name, c.check)
	}
}

// sameLabels reports whether two label sets are equal and not empty.
func sameLabels(a, b map[string]string) bool {
	if len(a) == 0 || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
