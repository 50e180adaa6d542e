package sync

import (
	gosync "sync"
)

// segment is a run of encoded frames, or a request to stream the whole
// state at that point of the queue.
type segment struct {
	data     []byte
	transfer bool
}

// chunkSize is the capacity of one queued data segment. Frames are
// appended into fixed chunks, never into one growing buffer, so a queue
// that backs up costs no re-copying.
const chunkSize = 256 << 10

// outQueue is a connection's bounded outbound queue. Producers (client
// goroutines pushing changes, the reader answering heartbeats) append;
// the connection's single writer takes everything at once. Order is kept,
// including where a transfer sits relative to frames.
type outQueue struct {
	mu       gosync.Mutex
	segs     []segment
	free     [][]byte
	bytes    int
	max      int
	overflow bool
	wake     chan struct{}
}

func newOutQueue(max int) *outQueue {
	return &outQueue{max: max, wake: make(chan struct{}, 1)}
}

func (q *outQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pushFirstOverflow appends encoded frames. It reports false once the
// queue has overflowed (the caller must drop the connection), and first
// only to the call that overflowed it, so the overflow is said once.
func (q *outQueue) pushFirstOverflow(frames []byte) (ok, first bool) {
	q.mu.Lock()
	if q.overflow || q.bytes+len(frames) > q.max {
		first = !q.overflow
		q.overflow = true
		q.mu.Unlock()
		return false, first
	}
	for rest := frames; len(rest) > 0; {
		n := len(q.segs)
		if n == 0 || q.segs[n-1].transfer || len(q.segs[n-1].data) == cap(q.segs[n-1].data) {
			var buf []byte
			if k := len(q.free); k > 0 {
				buf, q.free = q.free[k-1][:0], q.free[:k-1]
			} else {
				buf = make([]byte, 0, chunkSize)
			}
			q.segs = append(q.segs, segment{data: buf})
			n++
		}
		seg := &q.segs[n-1]
		k := min(len(rest), cap(seg.data)-len(seg.data)) // frames may straddle chunks: the writer sends them in order
		seg.data = append(seg.data, rest[:k]...)
		rest = rest[k:]
	}
	q.bytes += len(frames)
	q.mu.Unlock()
	q.signal()
	return true, false
}

// pushTransfer queues a full-state transfer at this point of the stream.
func (q *outQueue) pushTransfer() {
	q.mu.Lock()
	q.segs = append(q.segs, segment{transfer: true})
	q.mu.Unlock()
	q.signal()
}

// take removes and returns everything queued.
func (q *outQueue) take() []segment {
	q.mu.Lock()
	defer q.mu.Unlock()
	segs := q.segs
	q.segs = nil
	q.bytes = 0
	return segs
}

// recycle keeps the buffers of written segments for reuse.
func (q *outQueue) recycle(segs []segment) {
	q.mu.Lock()
	for _, s := range segs {
		if cap(s.data) == chunkSize && len(q.free) < 16 {
			q.free = append(q.free, s.data)
		}
	}
	q.mu.Unlock()
}

// depth is the number of queued bytes.
func (q *outQueue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}
