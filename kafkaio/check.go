package kafkaio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pythia-pipe/pythia-pipe/failure"
	"github.com/pythia-pipe/pythia-pipe/kafkaconn"
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

// lookAgain is how long the check waits before it looks once more for topics it did not
// find: a topic created a moment ago may not be in every broker's metadata yet.
const lookAgain = 500 * time.Millisecond

// Check verifies, within the connect timeout (and a second), that the brokers answer and
// that topics exist, and returns the rules of those whose configs could be read. Its errors
// say what is wrong in one line: a *ConnectError (no broker, TLS or SASL trouble, a Kafka
// error with its hint) or a *MissingTopicsError.
func (a *Admin) Check(ctx context.Context, topics []string) (map[string]TopicRules, error) {
	ctx, cancel := context.WithTimeout(ctx, a.wait+time.Second)
	defer cancel()
	missing, err := a.missing(ctx, topics)
	if err == nil && len(missing) > 0 {
		select {
		case <-time.After(lookAgain):
		case <-ctx.Done():
		}
		missing, err = a.missing(ctx, topics)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, a.unanswered(err)
		}
		return nil, explain(a.c, err)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, &MissingTopicsError{Topics: missing}
	}
	return a.Rules(ctx, topics...), nil
}

// missing asks the brokers afresh, never creating a topic, which of topics do not exist;
// with no topics it asks only whether they answer.
func (a *Admin) missing(ctx context.Context, topics []string) ([]string, error) {
	resp, err := a.askSeeds(ctx, topics)
	if err != nil {
		return nil, err
	}
	found := map[string]bool{}
	for _, t := range resp.Topics {
		err := kerr.ErrorForCode(t.ErrorCode)
		switch {
		case t.Topic == nil:
		case errors.Is(err, kerr.UnknownTopicOrPartition):
		case err != nil && !kerr.IsRetriable(err): // no right to it, say: not missing, and not usable
			return nil, fmt.Errorf("topic %s: %w", *t.Topic, err)
		default: // a topic still electing its leaders exists
			found[*t.Topic] = true
		}
	}
	var missing []string
	for _, t := range topics {
		if !found[t] {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// askSeeds sends a metadata request for topics to every broker of kafka.brokers at once, not
// retried, and returns the first answer. Retried, a wrong password or a port that speaks
// another protocol (a broker closing the connection) would look like a broker restarting
// until the deadline, and its explanation would be lost. When none answers, the error is
// the first that is not the deadline's.
func (a *Admin) askSeeds(ctx context.Context, topics []string) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the requests still under way
	type answer struct {
		resp kmsg.Response
		err  error
	}
	seeds := a.cl.SeedBrokers()
	answers := make(chan answer, len(seeds))
	for _, seed := range seeds {
		req := metadataRequest(topics...) // one each: a request is not to be shared while written
		go func() {
			resp, err := seed.Request(ctx, req)
			answers <- answer{resp, err}
		}()
	}
	var telling, last error
	for range seeds {
		an := <-answers
		switch {
		case an.err == nil:
			return an.resp.(*kmsg.MetadataResponse), nil
		case telling == nil && !errors.Is(an.err, context.DeadlineExceeded) && !errors.Is(an.err, context.Canceled):
			telling = an.err
		}
		last = an.err
	}
	if telling != nil {
		return nil, telling
	}
	return nil, last
}

// unanswered is the error of a check that ran out of time.
func (a *Admin) unanswered(err error) error {
	cause := fmt.Sprintf("no broker answered within %v: is the address right and reachable from here?", a.wait)
	if a.c.TLS != nil {
		cause = fmt.Sprintf("no broker answered within %v: is the address right, and does this port speak TLS?", a.wait)
	}
	return &ConnectError{Brokers: a.c.Brokers, Cause: cause, Err: err}
}

// explain turns a client error into a ConnectError with the likely cause.
func explain(c *kafkaconn.Config, err error) error {
	ce := &ConnectError{Brokers: c.Brokers, Err: err}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		recordHdr tls.RecordHeaderError
		firstEOF  *kgo.ErrFirstReadEOF
		code      *kerr.Error
	)
	msg := err.Error()
	closed := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &firstEOF)
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
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
	case failure.IsTimeout(err) && c.TLS != nil:
		ce.Cause = "the connection timed out: is the address right, and does this port speak TLS?"
	case failure.IsTimeout(err):
		ce.Cause = "the connection timed out: is the address right and reachable from here?"
	case closed && c.SASL != nil:
		ce.Cause = "SASL authentication failed for user " + c.SASL.Username + ": the broker closed the connection (wrong user name or password, or a mechanism it does not enable?)"
	case closed && c.TLS == nil:
		ce.Cause = "the broker closed the connection: does this port expect TLS (protocol SSL) or SASL?"
	case closed:
		ce.Cause = "the broker closed the connection during the TLS handshake: does it require a client certificate, or is this port not TLS?"
	case errors.As(err, &code) && failure.Hint(code) != "":
		ce.Cause = msg + " (" + failure.Hint(code) + ")"
	default:
		ce.Cause = msg
	}
	return ce
}

// Explain is err for a log line. franz-go words a connection a broker closed right after a
// request as "is SASL missing?": likely before the client ever talked to the broker, not
// once it has (then a broker restarting, or the network, is).
func Explain(err error, talked bool) string {
	var eof *kgo.ErrFirstReadEOF
	if talked && errors.As(err, &eof) {
		return "the broker closed the connection (a broker restarting, or the network?)"
	}
	return err.Error()
}
