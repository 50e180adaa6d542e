package server

import (
	"net"
	"sync/atomic"
	"time"
)

// readStage is what a connection is doing, which decides the read deadline
// that applies to it.
type readStage uint8

const (
	// stageHandshake: until the hello is decoded, every read runs under
	// the absolute handshake deadline (accept + HandshakeTimeout).
	stageHandshake readStage = iota
	// stageClient: a client connection after its hello: every read runs
	// under now + IdleTimeout when one is configured, else under none.
	stageClient
	// stagePeer: a peer connection, handed to the replication layer, which
	// arms its own silence deadline before every read (sync's
	// silenceReader); this reader leaves the deadline alone.
	stagePeer
)

// connReader is the only reader of an accepted connection's bytes. Before
// every Read of the connection it arms the read deadline of the stage the
// connection is in at that moment, so no deadline outlives the stage that
// set it, however the bytes happen to be split across reads (a hello that
// arrives with the first bytes of the next frame, a client that pipelines
// so that the buffer never runs dry).
//
// Once the server is stopping (StopClients, Shutdown) it arms "now"
// instead: StopClients sets every client's deadline to now to unblock its
// reader, and re-arming must never undo that. The check comes after the
// arming, so whichever of StopClients and Read runs second wins with
// "now".
//
// Stage changes happen on the connection's own goroutine, between reads.
type connReader struct {
	conn        net.Conn
	stopping    *atomic.Bool
	stage       readStage
	handshakeBy time.Time
	idle        time.Duration // 0: no idle deadline
	// records is set on a TLS connection: a Read returns one TLS record
	// (16 KiB of plaintext at most), so Read goes on taking the records
	// already received (see Read).
	records bool
}

// past is a read deadline already over: a read under it takes only what
// has already arrived.
var past = time.Unix(1, 0)

func (r *connReader) Read(p []byte) (int, error) {
	if r.stage == stagePeer {
		return r.conn.Read(p)
	}
	var d time.Time // zero: no deadline
	switch {
	case r.stage == stageHandshake:
		d = r.handshakeBy
	case r.idle > 0:
		d = time.Now().Add(r.idle)
	}
	_ = r.conn.SetReadDeadline(d)
	if r.stopping.Load() {
		_ = r.conn.SetReadDeadline(time.Now())
	}
	n, err := r.conn.Read(p)
	if !r.records || err != nil || r.stage != stageClient {
		return n, err
	}
	// A client's frames are committed when the read buffer runs dry: one
	// TLS record per Read made those commits four times smaller than on a
	// plain connection. Take the records that have already arrived, under
	// a deadline that is over (a read timeout leaves a TLS connection
	// usable, and a partial record stays buffered in it); the next Read
	// arms its stage's deadline again. Any other error is the connection's
	// own and comes back on its next Read.
	_ = r.conn.SetReadDeadline(past)
	for n < len(p) {
		m, err := r.conn.Read(p[n:])
		n += m
		if err != nil || m == 0 {
			break
		}
	}
	return n, nil
}

// replyWriteChunk is how much of a reply one write may carry: each chunk
// gets a fresh write deadline, so a slow reader that keeps reading is not
// cut, while one that stops reading is cut after WriteTimeout.
const replyWriteChunk = 64 << 10

// deadlineWriter arms the write deadline before every write of the
// connection (client connections write only ListAll replies).
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		m, err := w.conn.Write(p[n:min(len(p), n+replyWriteChunk)])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
