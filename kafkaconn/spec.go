// Package kafkaconn is the Kafka connection shared by a pipeline's source, sinks and DLQ:
// brokers, client id, protocol version and security (TLS, SASL).
package kafkaconn

import (
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pythia-pipe/pythia-pipe/spec"
)

// Field is the `kafka` block of a pipeline file.
var Field = spec.Object("kafka", "The Kafka connection shared by the source, the sinks and the DLQ.",
	spec.Strings("brokers", "Bootstrap brokers, host:port: a comma list or a YAML list.").Commas().NotEmpty().WithDefault("localhost:9092"),
	spec.String("client_id", "Client id sent to the brokers. Default: the pipeline name."),
	spec.String("version", "The newest Kafka protocol version to speak (at least 2.8.0; Kafka 4 rejects older requests): sarama speaks it, franz-go negotiates each request with the brokers up to it.").WithDefault("3.6.0"),
	spec.Enum("client", "The Kafka client at-least-once runs on: franz-go, or sarama (the same guarantees, one suite of tests; exactly_once always runs on franz-go).", "franz-go", "sarama").WithDefault("franz-go"),
	spec.Duration("connect_timeout", "Time allowed to reach a broker before startup fails.").WithDefault("10s"),
	spec.Object("security", "TLS and SASL; leave out for a plaintext connection.",
		spec.Enum("protocol", "The security protocol, as Kafka names it.", "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL").WithDefault("PLAINTEXT"),
		spec.Object("sasl", "SASL authentication (protocol SASL_PLAINTEXT or SASL_SSL).",
			spec.Enum("mechanism", "The SASL mechanism.", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512").Require(),
			spec.String("username", "The user name.").Require(),
			spec.String("password", "The password; use ${VAR} to read it from the environment.").Require().Secrets(),
		),
		spec.Object("tls", "TLS settings (protocol SSL or SASL_SSL).", TLSFields("brokers", "broker")...),
	),
)

// TLSFields are the fields of a tls block, for the servers named (brokers, registries): the
// kafka block's and the registry block's share them.
func TLSFields(servers, server string) []spec.Field {
	return []spec.Field{
		spec.String("ca_file", "PEM file of the CA(s) that signed the "+servers+"' certificates. Default: the system roots."),
		spec.String("cert_file", "PEM client certificate, for mutual TLS (needs key_file)."),
		spec.String("key_file", "PEM private key of the client certificate."),
		spec.String("server_name", "The name to verify "+servers+"' certificates against. Default: the "+server+" host."),
		spec.Bool("insecure_skip_verify", "Do not verify the "+servers+"' certificates (tests only).").WithDefault("false"),
	}
}

// Config is the validated connection.
type Config struct {
	Brokers        []string
	BrokerVars     []string // the ${VAR}s kafka.brokers is written with, in order
	ClientID       string
	Version        string
	Client         string // franz-go or sarama
	ConnectTimeout time.Duration
	Protocol       string
	SASL           *SASL // nil without SASL
	TLS            *TLS  // nil without TLS
	// CreateOnWrite lets a write to a missing topic create it, where the broker allows it.
	// Never from a file (records never create topics): `dev` sets it, so that the topics a
	// topic_expr computes appear in its in-process broker as they are written.
	CreateOnWrite bool
}

// SASL holds credentials; Password is never printed.
type SASL struct {
	Mechanism, Username, Password string
}

// TLS names the files of a TLS connection, resolved against the pipeline's folder.
type TLS struct {
	CAFile, CertFile, KeyFile, ServerName string
	InsecureSkipVerify                    bool
	path                                  string // the block's path in the file, for errors: kafka.security.tls
}

// varRef is a ${VAR} reference, as pipeline substitutes them.
var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// FromValue checks the combinations the spec cannot express and returns the config.
func FromValue(p *spec.Parser, v *spec.Value, pipelineName, baseDir string) *Config {
	c := &Config{
		Brokers:        v.Strings("brokers"),
		ClientID:       v.String("client_id"),
		Version:        v.String("version"),
		Client:         v.String("client"),
		ConnectTimeout: v.Duration("connect_timeout"),
	}
	if c.ClientID == "" {
		c.ClientID = pipelineName
	}
	brokers := v.Get("brokers")
	written := brokers.Written()
	for _, it := range brokers.Items {
		written += " " + it.Written()
	}
	for _, m := range varRef.FindAllStringSubmatch(written, -1) {
		if !slices.Contains(c.BrokerVars, m[1]) {
			c.BrokerVars = append(c.BrokerVars, m[1])
		}
	}
	for _, b := range v.Get("brokers").Items {
		if _, port, ok := strings.Cut(b.Str, ":"); !ok || port == "" || strings.Trim(port, "0123456789") != "" {
			p.Errorf(b.Pos, b.Path, "broker %q is not host:port", b.Str)
		}
	}
	checkVersion(p, v.Get("version"))
	sec := v.Get("security")
	c.Protocol = sec.String("protocol")
	proto := sec.Get("protocol")
	wantSASL := strings.HasPrefix(c.Protocol, "SASL_")
	wantTLS := strings.HasSuffix(c.Protocol, "SSL")
	if s := sec.Get("sasl"); s.Set {
		if !wantSASL {
			p.Errorf(s.Pos, s.Path, "sasl is set but protocol is %s: use SASL_SSL (or SASL_PLAINTEXT without TLS)", c.Protocol)
		}
		c.SASL = &SASL{Mechanism: s.String("mechanism"), Username: s.String("username"), Password: s.String("password")}
	} else if wantSASL {
		p.Errorf(proto.Pos, proto.Path, "protocol %s needs a sasl block with mechanism, username and password", c.Protocol)
	}
	if t := sec.Get("tls"); t.Set {
		if !wantTLS {
			p.Errorf(t.Pos, t.Path, "tls is set but protocol is %s: use SSL (or SASL_SSL with SASL)", c.Protocol)
		}
		c.TLS = TLSFromValue(p, t, baseDir)
	} else if wantTLS {
		c.TLS = &TLS{}
	}
	return c
}

// TLSFromValue reads a tls block (TLSFields): a certificate needs its key, the files exist;
// their names are resolved against baseDir.
func TLSFromValue(p *spec.Parser, t *spec.Value, baseDir string) *TLS {
	c := &TLS{CAFile: t.String("ca_file"), CertFile: t.String("cert_file"), KeyFile: t.String("key_file"),
		ServerName: t.String("server_name"), InsecureSkipVerify: t.Bool("insecure_skip_verify"), path: t.Path}
	switch cert, key := t.Get("cert_file"), t.Get("key_file"); {
	case cert.Set && !key.Set:
		p.Errorf(cert.Pos, cert.Path, "a client certificate needs its key: set key_file too")
	case key.Set && !cert.Set:
		p.Errorf(key.Pos, key.Path, "key_file is set without cert_file: set the client certificate too")
	}
	for _, name := range []string{"ca_file", "cert_file", "key_file"} {
		p.CheckFile(t.Get(name), baseDir)
	}
	c.CAFile, c.CertFile, c.KeyFile = resolve(baseDir, c.CAFile), resolve(baseDir, c.CertFile), resolve(baseDir, c.KeyFile)
	return c
}

func checkVersion(p *spec.Parser, v *spec.Value) {
	parts := strings.Split(v.Str, ".")
	nums := make([]int, len(parts))
	for i, part := range parts {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || len(parts) < 3 || len(parts) > 4 {
			p.Errorf(v.Pos, v.Path, "expected a Kafka version such as 3.6.0, got %q", v.Str)
			return
		}
		nums[i] = n
	}
	if nums[0] < 2 || (nums[0] == 2 && nums[1] < 8) {
		p.Errorf(v.Pos, v.Path, "version %s is too old: pythia-pipe needs 2.8.0 or newer", v.Str)
	}
}

func resolve(baseDir, name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(baseDir, name)
}
