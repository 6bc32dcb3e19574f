package kafkaio

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

// Each client error the startup check may meet, as franz-go (or crypto/tls under it) gives it,
// explained in one line that names the likely cause and never the password.
func TestExplain(t *testing.T) {
	plain := &kafkaconn.Config{Brokers: []string{"b:9092"}}
	sasl := &kafkaconn.Config{Brokers: []string{"b:9092"}, SASL: &kafkaconn.SASL{Username: "carol", Password: "hunter2"}}
	tlsConf := &kafkaconn.Config{Brokers: []string{"b:9093"}, TLS: &kafkaconn.TLS{}}
	dial := func(err error) error { // as franz-go wraps a failed dial
		return fmt.Errorf("unable to dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: err})
	}
	cases := []struct {
		name string
		c    *kafkaconn.Config
		err  error
		want string
	}{
		{"refused", plain, dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), "connection refused: is Kafka running there"},
		{"sasl failed", sasl, fmt.Errorf("SASL authentication failed: %w", kerr.SaslAuthenticationFailed), "SASL authentication failed for user carol"},
		{"sasl closed", sasl, &kgo.ErrFirstReadEOF{}, "SASL authentication failed for user carol"},
		{"unknown CA", tlsConf, dial(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), "set kafka.security.tls.ca_file"},
		{"wrong host name", tlsConf, dial(&tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "b"}}),
			"not valid for this address"},
		{"TLS to a plaintext port", tlsConf, dial(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}),
			"does not speak TLS on this port"},
		{"plaintext to a TLS port", plain, &kgo.ErrFirstReadEOF{}, "does this port expect TLS"},
		{"closed mid-frame", plain, io.ErrUnexpectedEOF, "does this port expect TLS"},
		{"closed in the handshake", tlsConf, dial(io.EOF), "during the TLS handshake"},
		{"client cert required", tlsConf, errors.New("remote error: tls: certificate required"), "requires a client certificate"},
		{"dial timed out", plain, dial(os.ErrDeadlineExceeded), "the connection timed out: is the address right and reachable"},
		{"TLS handshake timed out", tlsConf, dial(os.ErrDeadlineExceeded), "does this port speak TLS?"},
		{"not authorized", plain, fmt.Errorf("topic orders: %w", kerr.TopicAuthorizationFailed), "check its ACLs"},
		{"a Kafka error the table has no hint for", plain, kerr.UnsupportedVersion, kerr.UnsupportedVersion.Error()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := explain(c.c, c.err)
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

// A connection the broker closed right after a request reads as a missing SASL to franz-go;
// once the client has talked to the broker, the log says what is likelier.
func TestExplainAfterTalking(t *testing.T) {
	closed := fmt.Errorf("ending: %w", &kgo.ErrFirstReadEOF{})
	if got := Explain(closed, true); strings.Contains(got, "SASL") || strings.Contains(got, "TLS") || !strings.Contains(got, "closed the connection") {
		t.Errorf("after talking: %q", got)
	}
	if got := Explain(closed, false); got != closed.Error() {
		t.Errorf("before talking: %q, want franz-go's own words", got)
	}
	if got := Explain(kerr.RequestTimedOut, true); got != kerr.RequestTimedOut.Error() {
		t.Errorf("other errors: %q", got)
	}
}
