package server

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/contactstore/contactstore/store"
	"github.com/stretchr/testify/require"
)

// A ListAll reply streams from a store iterator through a fixed buffer:
// 30 connections asking for a 50,000-contact book (13.8 MB each) and
// never reading cost the server far less than the replies (issue 15,
// ListAll amplification). Built whole, they would be 414 MB.
func TestUnreadListAllsDoNotHoldTheirReplies(t *testing.T) {
	sc := store.DefaultConfig(t.TempDir())
	sc.MaxContactsPerBook = 0
	s := startServerWith(t, sc, func(c *Config) { c.WriteTimeout = time.Minute })
	b := s.store.NewBatch()
	for i := range 50_000 {
		require.NoError(t, b.Update([]byte("big"), fmt.Appendf(nil, "contact-%06d", i), []byte("+55 85 99999-9999")))
		if b.Len() == 4096 {
			_, err := b.Commit()
			require.NoError(t, err)
		}
	}
	_, err := b.Commit()
	require.NoError(t, err)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	var conns []*rawConn
	for range 30 {
		c := dialRaw(t, s)
		c.send(rawHello(2, "big"), rawListAll)
		conns = append(conns, c)
	}
	// Every reply is under way (its count is at the client, whose socket
	// buffer fills) and then blocked on the client that does not read.
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.r.Peek(4)
		require.NoError(t, err)
	}
	peak := uint64(0)
	for range 10 {
		peak = max(peak, heap())
		time.Sleep(50 * time.Millisecond)
	}
	grew := int64(peak) - int64(before)
	t.Logf("heap in use grew by %.1f MB with 30 unread 13.8 MB replies", float64(grew)/(1<<20))
	require.Less(t, grew, int64(100<<20))
}
