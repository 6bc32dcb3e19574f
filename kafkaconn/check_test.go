package kafkaconn

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestExplain(t *testing.T) {
	plain := &Config{Brokers: []string{"b:9092"}}
	sasl := &Config{Brokers: []string{"b:9092"}, SASL: &SASL{Username: "carol", Password: "hunter2"}}
	tlsConf := &Config{Brokers: []string{"b:9093"}, TLS: &TLS{}}
	cases := []struct {
		name string
		c    *Config
		err  error
		want string
	}{
		{"refused", plain, fmt.Errorf("%w: %w", sarama.ErrOutOfBrokers, syscall.ECONNREFUSED), "connection refused: is Kafka running there"},
		{"sasl failed", sasl, sarama.ErrSASLAuthenticationFailed, "SASL authentication failed for user carol"},
		{"sasl closed", sasl, fmt.Errorf("%w: %w", sarama.ErrOutOfBrokers, io.EOF), "SASL authentication failed for user carol"},
		{"unknown CA", tlsConf, x509.UnknownAuthorityError{}, "set kafka.security.tls.ca_file"},
		{"plaintext to TLS port", plain, io.EOF, "does this port expect TLS"},
		{"client cert required", tlsConf, errors.New("remote error: tls: certificate required"), "requires a client certificate"},
		{"not authorized", plain, sarama.ErrTopicAuthorizationFailed, "check its ACLs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.c.explain(c.err)
			var ce *ConnectError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "\n") {
				t.Errorf("a password or a second line in %q", err)
			}
			if !errors.Is(err, c.err) {
				t.Error("the cause is not wrapped")
			}
		})
	}
}

func TestSaramaConfig(t *testing.T) {
	c := &Config{Brokers: []string{"b:1"}, ClientID: "cid", Version: "3.6.0", ConnectTimeout: 4 * time.Second,
		SASL: &SASL{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}}
	sc, err := c.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	if sc.ClientID != "cid" || !sc.Version.IsAtLeast(sarama.V3_6_0_0) || sc.Net.DialTimeout != 4*time.Second ||
		!sc.Net.SASL.Enable || sc.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA512 || sc.Net.SASL.SCRAMClientGeneratorFunc == nil {
		t.Errorf("config not as set: %+v", sc.Net.SASL)
	}
	if err := sc.Validate(); err != nil {
		t.Errorf("sarama rejects the config: %v", err)
	}
	bad := &Config{Version: "3.6.0", TLS: &TLS{CAFile: "/nonexistent/ca.pem"}}
	if _, err := bad.Sarama(); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
}
