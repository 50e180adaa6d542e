package server

import (
	"bufio"
	"net"
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/contactstore/contactstore/wire"
)

// serveClient runs a role-Client connection for user. Changes are staged
// in one batch while more input is buffered and committed when the input
// runs dry (or the batch is full), so a pipelining client pays one commit
// per read, not per frame. ListAll commits, waits for the durability
// barrier, then replies.
func (s *Server) serveClient(conn net.Conn, dec *wire.Decoder, user string) {
	batch := s.store.NewBatch()
	defer batch.Close()
	// Every write of a reply, not just the first, gets WriteTimeout, and so
	// does every reply whether or not an idle timeout is set: a client that
	// never reads cannot pin this goroutine and its buffers forever.
	bw := bufio.NewWriterSize(deadlineWriter{conn: conn, timeout: s.cfg.WriteTimeout}, 32<<10)
	userB := []byte(user)
	var (
		f       wire.ClientFrame
		lastSeq uint64
		list    []store.Contact
		reply   []byte
	)
	if !s.waitSynced() {
		return
	}
	var stream ChangeStream
	if s.pub != nil {
		stream = s.pub.NewStream()
		defer stream.Flush()
	}
	commit := func() bool {
		seq, err := batch.Commit()
		if err != nil {
			s.log.Error("commit failed; closing connection", "remote", conn.RemoteAddr().String(), "user", user, "error", err)
			return false
		}
		lastSeq = max(lastSeq, seq)
		if stream != nil {
			stream.Flush()
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
			ch, err := batch.Update(userB, f.Contact, f.Phone)
			if err != nil { // the book is full: the protocol has no error reply, so the connection ends
				s.Counters.AddViolation("book_full")
				s.log.Warn("closing connection: contact book is full", "remote", conn.RemoteAddr().String(),
					"user", user, "error", err)
				return
			}
			if stream != nil {
				stream.Publish(ch)
			}
		case wire.ClientDelete:
			ch := batch.Delete(userB, f.Contact)
			if stream != nil {
				stream.Publish(ch)
			}
		case wire.ClientListAll:
			if !commit() {
				return
			}
			if err := s.store.Sync(lastSeq); err != nil {
				s.log.Error("fsync failed; closing connection", "user", user, "error", err)
				return
			}
			if stream != nil && s.cfg.ReplicaAckTimeout > 0 {
				stream.Barrier(s.cfg.ReplicaAckTimeout)
			}
			list = s.store.List(userB, list[:0])
			reply = wire.AppendListAllCount(reply[:0], uint32(len(list)))
			for _, c := range list {
				reply, _ = wire.AppendListAllEntryString(reply, c.Name, c.Phone) // stored values always fit
			}
			_, _ = bw.Write(reply) // a write error sticks and Flush reports it
			if err := bw.Flush(); err != nil {
				s.connError(conn, "client reply", user, err)
				return
			}
			if cap(reply) > 4<<20 { // do not pin a huge buffer on an idle connection
				reply, list = nil, nil
			}
		}
	}
}

// waitSynced holds a new client connection until the server has its peers'
// state, the server shuts down (false), or SyncWaitTimeout passes. Nothing
// reads the connection meanwhile, so no deadline can fire: the idle
// deadline, if any, is armed by the first read after the wait.
func (s *Server) waitSynced() bool {
	if s.synced == nil || s.synced() {
		return true
	}
	deadline := time.Now().Add(s.cfg.SyncWaitTimeout)
	for !s.synced() && time.Now().Before(deadline) {
		if s.isShutting() {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
