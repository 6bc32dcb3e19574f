package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Config is the TLS configuration of a connection: the CA, the client certificate.
func (t *TLS) Config() (*tls.Config, error) {
	where := t.path
	if where == "" {
		where = "kafka.security.tls"
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} // #nosec G402 -- opt-in, documented as tests only
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", where, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: %s holds no PEM certificate", where, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: client certificate: %w", where, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
