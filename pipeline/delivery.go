package pipeline

import (
	"strconv"
	"time"

	"github.com/pythia-pipe/pythia-pipe/sinks"
	"github.com/pythia-pipe/pythia-pipe/sources"
	"github.com/pythia-pipe/pythia-pipe/spec"
	"github.com/pythia-pipe/pythia-pipe/stages"
)

// ExactlyOnce says whether the pipeline reads, writes and commits in Kafka transactions.
func (p *Pipeline) ExactlyOnce() bool { return p.Delivery == "exactly_once" }

// checkDelivery says why a pipeline cannot be exactly-once: every sink and the DLQ must
// write to Kafka on the source's cluster (a file cannot join a Kafka transaction), through
// one transactional producer (acks all, idempotent), and a transaction must end before
// the group would expel its member: transaction_timeout < session_timeout <
// rebalance_timeout, and commit_interval well within the transaction.
func checkDelivery(p *spec.Parser, pl *Pipeline, delivery, kafka *spec.Value) {
	src := pl.KafkaSource()
	if src == nil {
		return
	}
	fields := pl.Source.Fields
	if !pl.ExactlyOnce() {
		if tt := fields.Get("transaction_timeout"); tt.Set {
			p.Warnf(tt.Pos, tt.Path, "transaction_timeout applies only to delivery: exactly_once; this pipeline is at_least_once")
		}
		return
	}
	if !fields.Get("commit_interval").Set {
		src.CommitInterval = sources.ExactlyOnceCommitInterval
	}
	why := "under delivery: exactly_once (line " + strconv.Itoa(delivery.Pos.Line) + ")"
	if c := pl.Kafka; c != nil && c.Client == "sarama" {
		at := kafka.Get("client")
		p.Errorf(at.Pos, at.Path, "sarama runs at-least-once only %s: sarama cannot move a partition's fetch position back after an aborted transaction, so its records would be skipped; leave client out (franz-go)", why)
	}
	var first *Sink // the sink whose settings the one producer takes
	var shared sinks.Producer
	for _, sk := range pl.SinksAndDLQ() {
		if sk.Impl == nil {
			continue
		}
		tx, ok := sk.Impl.(sinks.Transactional)
		if !ok {
			t := sk.Fields.Get("type")
			p.Errorf(t.Pos, t.Path, "a %s sink cannot be exactly-once: %s every sink and the DLQ write to Kafka, in the source's transaction (or use delivery: at_least_once)", sk.Type, why)
			continue
		}
		pr := tx.ProducerSettings()
		if acks, idem := sk.Fields.Get("acks"), sk.Fields.Get("idempotent"); pr.Acks != "all" {
			p.Errorf(acks.Pos, acks.Path, "a transaction's writes need acks: all, and are idempotent: leave acks and idempotent out (%s)", why)
		} else if !pr.Idempotent {
			p.Errorf(idem.Pos, idem.Path, "a transaction's writes are idempotent: leave idempotent out (%s)", why)
		}
		if first == nil {
			first, shared = sk, pr
			continue
		}
		if differ := pr.Compression != shared.Compression || pr.Linger != shared.Linger || pr.BatchBytes != shared.BatchBytes; differ {
			p.Warnf(sk.Fields.Pos, sk.Fields.Path, "%s every sink writes through one producer, which takes the compression, linger and batch_bytes of sink %s; this sink's differ", why, first.Name)
		}
	}
	tt, st, rt := fields.Get("transaction_timeout"), fields.Get("session_timeout"), fields.Get("rebalance_timeout")
	if src.TransactionTimeout >= src.SessionTimeout {
		p.Errorf(tt.Pos, tt.Path, "transaction_timeout (%v) must be shorter than session_timeout (%v) %s: a member the group expels must not leave a transaction open", src.TransactionTimeout, src.SessionTimeout, why)
	}
	if src.SessionTimeout >= src.RebalanceTimeout {
		at := st
		if !st.Set {
			at = rt
		}
		p.Errorf(at.Pos, at.Path, "session_timeout (%v) must be shorter than rebalance_timeout (%v) %s: a transaction must end within a rebalance", src.SessionTimeout, src.RebalanceTimeout, why)
	}
	if ci := fields.Get("commit_interval"); src.CommitInterval*2 > src.TransactionTimeout {
		p.Errorf(ci.Pos, ci.Path, "commit_interval (%v) is how long a transaction reads %s: keep it under half of transaction_timeout (%v), which must also cover the records' way through the stages", src.CommitInterval, why, src.TransactionTimeout)
	}
	if iso := fields.Get("isolation"); src.Isolation != "read_committed" {
		p.Errorf(iso.Pos, iso.Path, "an exactly-once pipeline reads read_committed: records of aborted transactions must not be processed")
	}
	budget := src.TransactionTimeout - src.TransactionTimeout/5
	for _, st := range pl.Stages {
		if b, ok := st.Impl.(stages.Bounded); ok && b.Longest() > budget {
			p.Warnf(st.Fields.Pos, st.Fields.Path, "a record can spend up to %v in stage %s (its attempts failing), more than the %v a transaction may stay open (80%% of transaction_timeout %v) %s: "+
				"such a record aborts its transaction once, and is read again with its attempts kept; raise transaction_timeout or shorten the backoff to spare the abort",
				b.Longest().Round(time.Millisecond), st.Name, budget, src.TransactionTimeout, why)
		}
	}
}
