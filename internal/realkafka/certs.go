package realkafka

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSFiles are the PEM files of a test PKI: a CA, the broker's certificate (IP SAN
// 127.0.0.1), a client certificate for mutual TLS, and a second CA that signed nothing.
type TLSFiles struct {
	CA         string // the CA that signed the broker's and the client's certificates
	ServerPEM  string // broker: certificate chain + unencrypted PKCS#8 key, as Kafka's PEM keystore wants
	ClientCert string
	ClientKey  string
	OtherCA    string // a CA the broker's certificate is not signed by
}

// writeTLS generates the test PKI into dir.
func writeTLS(dir string) (TLSFiles, error) {
	f := TLSFiles{CA: filepath.Join(dir, "ca.pem"), ServerPEM: filepath.Join(dir, "server.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client.key"), OtherCA: filepath.Join(dir, "other-ca.pem")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	ca, caKey, caDER, err := newCA("pythia-pipe test CA")
	if err != nil {
		return f, err
	}
	_, _, otherDER, err := newCA("an unrelated CA")
	if err != nil {
		return f, err
	}
	serverDER, serverKey, err := newLeaf(ca, caKey, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		return f, err
	}
	clientDER, clientKey, err := newLeaf(ca, caKey, "pythia-client", x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return f, err
	}
	serverPKCS8, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		return f, err
	}
	clientPKCS8, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		return f, err
	}
	writes := []struct {
		path   string
		blocks []*pem.Block
	}{
		{f.CA, []*pem.Block{{Type: "CERTIFICATE", Bytes: caDER}}},
		{f.OtherCA, []*pem.Block{{Type: "CERTIFICATE", Bytes: otherDER}}},
		{f.ServerPEM, []*pem.Block{{Type: "CERTIFICATE", Bytes: serverDER}, {Type: "CERTIFICATE", Bytes: caDER}, {Type: "PRIVATE KEY", Bytes: serverPKCS8}}},
		{f.ClientCert, []*pem.Block{{Type: "CERTIFICATE", Bytes: clientDER}}},
		{f.ClientKey, []*pem.Block{{Type: "PRIVATE KEY", Bytes: clientPKCS8}}},
	}
	for _, w := range writes {
		var out []byte
		for _, b := range w.blocks {
			out = append(out, pem.EncodeToMemory(b)...)
		}
		if err := os.WriteFile(w.path, out, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func newCA(name string) (*x509.Certificate, *rsa.PrivateKey, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, der, err
}

func newLeaf(ca *x509.Certificate, caKey *rsa.PrivateKey, cn string, usage x509.ExtKeyUsage, ips []net.IP, dns []string) ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: ips, DNSNames: dns}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	return der, key, err
}
