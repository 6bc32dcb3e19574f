package saramaio

import (
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
)

func TestSaramaConfig(t *testing.T) {
	c := &kafkaconn.Config{Brokers: []string{"b:1"}, ClientID: "cid", Version: "3.6.0", ConnectTimeout: 4 * time.Second,
		SASL: &kafkaconn.SASL{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}}
	sc, err := Config(c)
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
	bad := &kafkaconn.Config{Version: "3.6.0", TLS: &kafkaconn.TLS{CAFile: "/nonexistent/ca.pem"}}
	if _, err := Config(bad); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
}
