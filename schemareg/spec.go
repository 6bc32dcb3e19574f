// Package schemareg is the schema registry a pipeline's Avro and Protobuf records are framed
// for: the `registry:` block of a pipeline file, a client (franz-go's pkg/sr) that caches
// schemas by id, and the Confluent wire format (magic byte, schema id, Protobuf message
// indexes). It decides nothing about failures: its errors say what the registry answered,
// and package failure says what that means.
package schemareg

import (
	"net/url"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/spec"
)

// Field is the `registry` block of a pipeline file.
var Field = spec.Object("registry", "The schema registry (Confluent API: Confluent, Apicurio's ccompat, Redpanda, Karapace) that Avro and Protobuf records are framed for: decode fetches writer schemas by id, sinks encode with a subject's schema.",
	spec.Strings("urls", "Registry URLs, tried in order: a comma list or a YAML list (http://host:8081; Apicurio: http://host:8080/apis/ccompat/v7).").Commas().NotEmpty().WithDefault("http://localhost:8081"),
	spec.Object("basic_auth", "HTTP basic authentication.",
		spec.String("username", "The user name.").Require(),
		spec.String("password", "The password; use ${VAR} to read it from the environment.").Require().Secrets(),
	),
	spec.String("bearer_token", "A bearer token sent with every request, instead of basic_auth; use ${VAR}.").Secrets(),
	spec.Object("tls", "TLS settings for https URLs.", kafkaconn.TLSFields("registries", "registry")...),
	spec.Duration("timeout", "Time allowed for one request (the answer included).").WithDefault("5s"),
	spec.Duration("connect_timeout", "Time allowed to connect to a registry; `validate` waits this long for one before it says it cannot reach it.").WithDefault("2s"),
)

// Config is the validated registry block. Password and Token are never printed.
type Config struct {
	URLs           []string
	Username       string
	Password       string
	Token          string
	TLS            *kafkaconn.TLS // nil: the system roots for https
	Timeout        time.Duration
	ConnectTimeout time.Duration
}

// FromValue reads the registry block, reporting what the spec cannot say alone; nil when the
// file has no registry block.
func FromValue(p *spec.Parser, v *spec.Value, baseDir string) *Config {
	if !v.Set {
		return nil
	}
	c := &Config{URLs: v.Strings("urls"), Token: v.String("bearer_token"), Timeout: v.Duration("timeout"),
		ConnectTimeout: v.Duration("connect_timeout")}
	if b := v.Get("basic_auth"); b.Set {
		c.Username, c.Password = b.String("username"), b.String("password")
		if t := v.Get("bearer_token"); t.Set {
			p.Errorf(t.Pos, t.Path, "basic_auth and bearer_token exclude each other: use one")
		}
	}
	tlsSet := v.Get("tls").Set
	if tlsSet {
		c.TLS = kafkaconn.TLSFromValue(p, v.Get("tls"), baseDir)
	}
	for _, u := range v.Get("urls").Items {
		parsed, err := url.Parse(u.Str)
		switch {
		case err != nil || parsed.Host == "" || (parsed.Scheme != "http" && parsed.Scheme != "https"):
			p.Errorf(u.Pos, u.Path, "registry URL %q is not http://host:port or https://host:port", u.Str)
		case parsed.User != nil:
			p.Errorf(u.Pos, u.Path, "put credentials in basic_auth, not in the URL: URLs are printed in logs and errors")
		case tlsSet && parsed.Scheme == "http":
			p.Errorf(u.Pos, u.Path, "tls is set but %s is http: use https", u.Str)
		}
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 2 * time.Second
	}
	return c
}

// DefaultSubject is the subject of a topic's values under the topic name strategy.
func DefaultSubject(topic string) string { return topic + "-value" }

// redact drops user info from a URL, should a registry error quote one.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return strings.Replace(u.String(), "//", "//***@", 1)
}
