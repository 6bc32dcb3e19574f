package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/pythia-pipe/pythia-pipe/failure"
)

// ConnectError is a startup failure with its likely cause, meant to be printed as one line.
type ConnectError struct {
	Brokers []string
	Cause   string // what most likely went wrong, and what to check
	Err     error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot use Kafka at %s: %s", strings.Join(e.Brokers, ","), e.Cause)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// MissingTopicsError names topics a pipeline needs that the cluster does not have.
type MissingTopicsError struct{ Topics []string }

func (e *MissingTopicsError) Error() string {
	return fmt.Sprintf("topic(s) %s do not exist: create them (pythia-pipe topics create, or your usual tooling) or enable auto-creation on the broker", strings.Join(e.Topics, ", "))
}

// Check connects with sc, within the connect timeout, and verifies that topics exist. Its errors
// say what is wrong in one line: no broker reachable, TLS or SASL trouble, missing topics.
func (c *Config) Check(sc *sarama.Config, topics []string) error {
	_, err := c.CheckTopics(sc, topics)
	return err
}

// CheckTopics is Check that also returns what each topic's configs say about the records it
// takes, for the topics whose configs could be read.
func (c *Config) CheckTopics(sc *sarama.Config, topics []string) (rules map[string]TopicRules, err error) {
	type result struct {
		client sarama.Client
		err    error
	}
	done := make(chan result, 1)
	check := *sc
	check.Metadata.Retry.Max = 0
	go func() {
		cl, err := sarama.NewClient(c.Brokers, &check)
		done <- result{cl, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(c.ConnectTimeout + time.Second):
		go func() { // the dial gives up on its own; close what it may still open
			if late := <-done; late.client != nil {
				late.client.Close()
			}
		}()
		cause := fmt.Sprintf("no broker answered within %v: is the address right and reachable from here?", c.ConnectTimeout)
		if c.TLS != nil {
			cause = fmt.Sprintf("no broker answered within %v: is the address right, and does this port speak TLS?", c.ConnectTimeout)
		}
		return nil, &ConnectError{Brokers: c.Brokers, Cause: cause}
	}
	if r.err != nil {
		return nil, c.explain(r.err)
	}
	defer r.client.Close()
	missing, err := missingTopics(r.client, topics)
	if err != nil {
		return nil, c.explain(err)
	}
	if len(missing) > 0 { // a topic created a moment ago may not be in every broker's metadata yet
		time.Sleep(500 * time.Millisecond)
		if err := r.client.RefreshMetadata(); err != nil {
			return nil, c.explain(err)
		}
		if missing, err = missingTopics(r.client, topics); err != nil {
			return nil, c.explain(err)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, &MissingTopicsError{Topics: missing}
	}
	return DescribeRules(r.client, topics), nil
}

func missingTopics(cl sarama.Client, topics []string) ([]string, error) {
	have, err := cl.Topics()
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{}
	for _, t := range have {
		exists[t] = true
	}
	var missing []string
	for _, t := range topics {
		if !exists[t] {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// explain turns a client error into a ConnectError with the likely cause.
func (c *Config) explain(err error) error {
	ce := &ConnectError{Brokers: c.Brokers, Err: err}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		recordHdr tls.RecordHeaderError
		kerr      sarama.KError
	)
	msg := err.Error()
	switch {
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed) || strings.Contains(msg, "SASL Authentication failed") || strings.Contains(msg, "Authentication failed"):
		user := ""
		if c.SASL != nil {
			user = " for user " + c.SASL.Username
		}
		ce.Cause = "SASL authentication failed" + user + ": wrong user name or password, or a mechanism the broker does not enable?"
	case errors.As(err, &unknownCA):
		ce.Cause = "the broker's certificate is signed by an authority this client does not trust: set kafka.security.tls.ca_file to its CA"
	case errors.As(err, &hostname):
		ce.Cause = "the broker's certificate is not valid for this address: " + hostname.Error() + " (set kafka.security.tls.server_name?)"
	case errors.As(err, &recordHdr) || strings.Contains(msg, "first record does not look like a TLS handshake"):
		ce.Cause = "the broker does not speak TLS on this port: is TLS configured on the broker, or should protocol be PLAINTEXT / SASL_PLAINTEXT?"
	case strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate"):
		ce.Cause = "the broker requires a client certificate: set kafka.security.tls.cert_file and key_file"
	case errors.Is(err, syscall.ECONNREFUSED):
		ce.Cause = "connection refused: is Kafka running there, and is kafka.brokers right?"
	case failure.IsTimeout(err):
		ce.Cause = "the connection timed out: is the address right and reachable from here?"
	case errors.Is(err, io.EOF) && c.SASL != nil:
		ce.Cause = "SASL authentication failed for user " + c.SASL.Username + ": the broker closed the connection (wrong user name or password, or a mechanism it does not enable?)"
	case errors.Is(err, io.EOF) && c.TLS == nil:
		ce.Cause = "the broker closed the connection: does this port expect TLS (protocol SSL) or SASL?"
	case errors.Is(err, io.EOF):
		ce.Cause = "the broker closed the connection during the TLS handshake: does it require a client certificate, or is this port not TLS?"
	case errors.As(err, &kerr) && failure.Hint(kerr) != "":
		ce.Cause = kerr.Error() + " (" + failure.Hint(kerr) + ")"
	default:
		ce.Cause = msg
	}
	return ce
}
