package kafkaio

import "context"

// Writer writes one message at a time and waits for its acknowledgement (dlq replay: the
// offset of what it replays is marked only once the copy is written). Acks all, idempotent,
// each message to the partition it names.
type Writer struct {
	p Producer
}

// maxWriteBytes is the largest message a Writer sends: a topic's own limit
// (max.message.bytes) is its broker's to enforce, and its refusal says so.
const maxWriteBytes = 64 << 20

// Writer opens a writer on the admin's connection. It makes no request: Write is the first.
func (a *Admin) Writer() (*Writer, error) {
	// Each write is waited for: lingering would only delay it. Snappy, as franz-go compresses
	// by default: a DLQ record can be large.
	p, err := NewProducer(a.conn, ProducerConfig{Acks: "all", Idempotent: true, Compression: "snappy", MaxMessageBytes: maxWriteBytes})
	if err != nil {
		return nil, err
	}
	return &Writer{p: p}, nil
}

// Write writes m and returns once the brokers acknowledged it (nil) or refused it. If ctx
// ends before m is sent, it is not written (ctx's error); once sent, its answer is waited for.
func (w *Writer) Write(ctx context.Context, m *Message) error {
	answered := make(chan error, 1)
	w.p.Produce(ctx, m, DoneFunc(func(_ *Message, err error) { answered <- err }))
	return <-answered
}

// Close closes the connections.
func (w *Writer) Close() { w.p.Close(context.Background()) } // nothing is outstanding: each Write waited
