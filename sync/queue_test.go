package sync

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQueueKeepsOrderAroundTransfers(t *testing.T) {
	q := newOutQueue(1 << 20)
	require.True(t, q.push([]byte("a")))
	require.True(t, q.push([]byte("b")))
	q.pushTransfer()
	require.True(t, q.push([]byte("c")))
	segs := q.take()
	require.Len(t, segs, 3)
	require.Equal(t, "ab", string(segs[0].data))
	require.True(t, segs[1].transfer)
	require.Equal(t, "c", string(segs[2].data))
	require.Equal(t, 0, q.depth())
	q.recycle(segs)
	require.True(t, q.push([]byte("d")))
	require.Equal(t, "d", string(q.take()[0].data), "a recycled buffer starts empty")
}

func TestQueueOverflowIsSticky(t *testing.T) {
	q := newOutQueue(10)
	require.True(t, q.push(make([]byte, 8)))
	require.False(t, q.push(make([]byte, 3)), "over the bound")
	q.take()
	require.False(t, q.push([]byte("x")), "once overflowed, the connection must be dropped")
}

func TestQueueWakesWriterOnce(t *testing.T) {
	q := newOutQueue(1 << 10)
	q.push([]byte("a"))
	q.push([]byte("b"))
	<-q.wake
	select {
	case <-q.wake:
		t.Fatal("two wakes queued; the writer takes everything at once")
	default:
	}
}

func TestQueueSplitsBlocksAcrossChunks(t *testing.T) {
	q := newOutQueue(4 * chunkSize)
	block := make([]byte, chunkSize/3+7)
	for i := range block {
		block[i] = byte(i)
	}
	var want []byte
	for range 8 {
		require.True(t, q.push(block))
		want = append(want, block...)
	}
	var got []byte
	for _, s := range q.take() {
		require.LessOrEqual(t, len(s.data), chunkSize)
		got = append(got, s.data...)
	}
	require.Equal(t, want, got, "the byte stream is intact across chunks")
}

func TestQueueReportsItsOverflowOnce(t *testing.T) {
	q := newOutQueue(64 << 10)
	ok, first := q.pushFirstOverflow(make([]byte, 60<<10))
	require.True(t, ok)
	require.False(t, first)
	ok, first = q.pushFirstOverflow(make([]byte, 8<<10))
	require.False(t, ok)
	require.True(t, first, "the push that overflows is told so")
	for range 3 {
		ok, first = q.pushFirstOverflow([]byte("x"))
		require.False(t, ok, "an overflowed queue takes nothing more")
		require.False(t, first, "only the first overflow is reported")
	}
}

// push is pushFirstOverflow for tests that only need ok.
func (q *outQueue) push(frames []byte) bool {
	ok, _ := q.pushFirstOverflow(frames)
	return ok
}
