//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/pythia-pipe/pythia-pipe/internal/devbroker"
	"github.com/pythia-pipe/pythia-pipe/internal/testproc"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
	"github.com/pythia-pipe/pythia-pipe/kafkaio/saramaio"
)

// Passwords full of what YAML would read as syntax reach the broker exactly: SCRAM-SHA-512
// users are created with them at run time, and the orders example authenticates as each with
// kafka.sasl.password: ${KAFKA_PASSWORD} (in a flow mapping, a block mapping, in quotes) and
// moves every record. Before ${VAR} was substituted after parsing, "pw #tail" reached the
// broker as "pw", "'single'" as "single", and `key: {value}` did not parse at all.
func TestScramPasswordsThroughVariables(t *testing.T) {
	cases := []struct {
		name, user, password, sasl string
	}{
		{"comment", "vars-comment", "s3cr3t #tail", "flow"},
		{"anchor and single quotes", "vars-anchor", "&anc 'single' real", "block"},
		{"double quotes", "vars-double", `say "hi"`, "quoted"},
		{"mapping", "vars-mapping", "key: {value} [x]", "flow"},
		{"everything", "vars-everything", ` #&'": {[*!%@|>,]} ~ `, "block"},
	}
	admin := scramAdmin(t)
	for _, c := range cases {
		salt := make([]byte, 16)
		_, _ = rand.Read(salt)
		res, err := admin.UpsertUserScramCredentials([]sarama.AlterUserScramCredentialsUpsert{{
			Name: c.user, Mechanism: sarama.SCRAM_MECHANISM_SHA_512, Iterations: 8192, Salt: salt, Password: []byte(c.password)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.ErrorCode != sarama.ErrNoError {
				t.Fatalf("creating %s: %v %v", r.User, r.ErrorCode, r.ErrorMessage)
			}
		}
	}
	// The broker takes new credentials once its metadata has them: wait until each user can log in.
	for _, c := range cases {
		testproc.WaitFor(t, 30*time.Second, c.user+" to authenticate", func() bool { return scramLogin(t, c.user, c.password) == nil })
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const n = 500
			creds := "{mechanism: SCRAM-SHA-512, username: " + c.user + ", password: ${KAFKA_PASSWORD}}\n"
			switch c.sasl {
			case "block":
				creds = "\n      mechanism: SCRAM-SHA-512\n      username: " + c.user + "\n      password: ${KAFKA_PASSWORD}\n"
			case "quoted":
				creds = "{mechanism: SCRAM-SHA-512, username: " + c.user + ", password: \"${KAFKA_PASSWORD}\"}\n"
			}
			block := "  brokers: " + kafka.Real.Addr("sasl") + "\n  security:\n    protocol: SASL_PLAINTEXT\n    sasl: " + creds
			file, topics, group := ordersFile(t, "vars-"+c.user, block)
			if err := kafka.Produce(context.Background(), topics[0], devbroker.OrdersFeed(n)); err != nil {
				t.Fatal(err)
			}
			p := runUntilDone(t, file, group, topics[0], "KAFKA_PASSWORD="+c.password)
			if dups := checkOrders(t, kafka, topics, n); dups != 0 {
				t.Errorf("%d duplicates in a run without failures", dups)
			}
			if strings.Contains(p.Output(), c.password) {
				t.Errorf("the password is in the logs")
			}
		})
	}
}

// scramAdmin is a cluster admin on the plaintext listener (the broker has no authorizer).
func scramAdmin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	conn := &kafkaconn.Config{Brokers: []string{kafka.Real.Addr("plaintext")}, ClientID: "e2e-admin", Version: "3.6.0", ConnectTimeout: 10 * time.Second}
	sc, err := saramaio.Config(conn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(conn.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	return admin
}

// scramLogin connects to the SASL listener as user with password: nil once the broker takes them.
func scramLogin(t *testing.T, user, password string) error {
	conn := &kafkaconn.Config{Brokers: []string{kafka.Real.Addr("sasl")}, ClientID: "e2e-login", Version: "3.6.0",
		ConnectTimeout: 5 * time.Second, Protocol: "SASL_PLAINTEXT",
		SASL: &kafkaconn.SASL{Mechanism: "SCRAM-SHA-512", Username: user, Password: password}}
	sc, err := saramaio.Config(conn)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(conn.Brokers, sc)
	if err != nil {
		return err
	}
	return client.Close()
}
