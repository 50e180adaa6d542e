package server

import (
	"bufio"
	"context"
	"errors"
	"net"

	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
)

// serveClient runs a role-Client connection for user, following one
// client change from the socket to the peers:
//
//  1. connReader (deadline.go) arms the stage's read deadline before every
//     read; the wire decoder reads one frame at a time, allocating nothing.
//  2. Update and Delete are staged in a store.Batch while more input is
//     buffered, and committed when the input runs dry (or the batch is
//     full): one commit per read, not per frame. The store stamps each
//     change, merges it, and logs it (store/shard.go) in the same atomic
//     write.
//  3. Replication (sync) feeds the store's change log to every peer on its
//     own; nothing is handed over here. Before a commit, Replicator.Pace
//     holds it while most serving peers are far behind (flow control,
//     sync/pace.go): the client's writes wait in its socket meanwhile.
//  4. ListAll commits, waits for the fsync that makes the connection's
//     changes durable, waits (bounded by ReplicaAckTimeout) for every live
//     peer to confirm them (Replicator.Barrier), then streams the book from
//     a consistent store iterator: the count first, then the contacts,
//     through a 32 KiB buffer, whatever the book's size.
func (s *Server) serveClient(conn net.Conn, dec *wire.Decoder, user string) {
	if !s.waitSynced() {
		return
	}
	batch := s.store.NewBatch()
	defer batch.Close()
	// Every write of a reply gets WriteTimeout, whether or not an idle
	// timeout is set: a client that never reads cannot pin this goroutine
	// for long, and holds no more than this buffer meanwhile.
	bw := bufio.NewWriterSize(deadlineWriter{conn: conn, timeout: s.cfg.WriteTimeout}, 32<<10)
	userB := []byte(user)
	var (
		f       wire.ClientFrame
		lastSeq uint64
		pos     store.Pos // change-log position of this connection's changes since its last ListAll
		reply   []byte
	)
	remote := conn.RemoteAddr().String()
	// commit applies what is staged; false ends the connection (after what
	// came before a refused change is committed).
	commit := func() bool {
		release := func() {}
		if s.repl != nil && batch.Len() > 0 {
			// Flow control: TCP's back-pressure reaches the client meanwhile.
			release = s.repl.Pace(s.ctx, batch.Len())
		}
		res, err := batch.Commit()
		release()
		lastSeq = max(lastSeq, res.Seq)
		for i, p := range res.Pos {
			pos[i] = max(pos[i], p)
		}
		switch {
		case errors.Is(err, store.ErrBookFull):
			// The protocol has no error reply, so the connection ends.
			s.Counters.AddViolation("book_full")
			s.log.Warn("closing connection: contact book is full", "remote", remote, "user", user)
			return false
		case err != nil:
			s.log.Error("commit failed; closing connection", "remote", remote, "user", user, "error", err)
			return false
		}
		return true
	}
	defer commit() // whatever ends the connection, what was applied is kept
	for {
		if dec.Buffered() == 0 || batch.Len() >= s.cfg.MaxBatch {
			if !commit() {
				return
			}
		}
		// connReader arms the idle deadline (if any) before every read of
		// the connection, however the frames are split across reads.
		if err := dec.ClientFrame(&f); err != nil {
			s.connError(conn, "client", user, err)
			return
		}
		s.Counters.ClientFrames[f.Op].Add(1) // Op is 1..3: the decoder refuses others
		switch f.Op {
		case wire.ClientUpdate:
			_ = batch.Update(userB, f.Contact, f.Phone) // decoded values always fit
		case wire.ClientDelete:
			_ = batch.Delete(userB, f.Contact)
		case wire.ClientListAll:
			if !commit() {
				return
			}
			if err := s.store.Sync(lastSeq); err != nil {
				s.log.Error("fsync failed; closing connection", "user", user, "error", err)
				return
			}
			if s.repl != nil && s.cfg.ReplicaAckTimeout > 0 && pos != (store.Pos{}) {
				ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ReplicaAckTimeout)
				s.repl.Barrier(ctx, pos)
				cancel()
			}
			pos = store.Pos{}
			var err error
			if reply, err = s.writeBook(bw, userB, reply); err != nil {
				s.connError(conn, "client reply", user, err)
				return
			}
		}
	}
}

// writeBook streams user's book as a ListAll reply through bw.
func (s *Server) writeBook(bw *bufio.Writer, user, buf []byte) ([]byte, error) {
	r, err := s.store.OpenBook(user)
	if err != nil {
		return buf, err
	}
	defer r.Close()
	buf = wire.AppendListAllCount(buf[:0], uint32(r.Count()))
	if _, err := bw.Write(buf); err != nil {
		return buf, err
	}
	for {
		name, phone, ok := r.Next()
		if !ok {
			break
		}
		buf, _ = wire.AppendListAllEntry(buf[:0], name, phone) // stored values always fit
		if _, err := bw.Write(buf); err != nil {
			return buf, err
		}
	}
	if err := r.Err(); err != nil {
		// The count is already sent: the reply cannot be finished
		// truthfully, so the connection ends.
		s.log.Error("reading a book failed mid-reply; closing connection", "user", string(user), "error", err)
		return buf, err
	}
	return buf, bw.Flush()
}

// waitSynced holds a new client connection until the server has its peers'
// state, the server shuts down (false), or SyncWaitTimeout passes. Nothing
// reads the connection meanwhile, so no deadline can fire: the idle
// deadline, if any, is armed by the first read after the wait.
func (s *Server) waitSynced() bool {
	if s.repl == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.SyncWaitTimeout)
	defer cancel()
	if s.repl.WaitSynced(ctx) {
		return true
	}
	return s.ctx.Err() == nil // timed out: serve anyway; shutting down: end
}
