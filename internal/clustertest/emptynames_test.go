package clustertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Empty user and contact names are ordinary values between servers too:
// replicated to a peer as changes, deleted there, and carried by the
// AskForUpdate transfer a new member pulls (tombstones included).
func TestEmptyNamesReplicateAndTransfer(t *testing.T) {
	h := New(t, 2, Options{BaseIP: 250})
	h.WaitConverged(20 * time.Second)
	put(t, h, 0, "", "", "1")
	put(t, h, 0, "", "b", "2")
	put(t, h, 0, "alice", "", "9")
	put(t, h, 1, "", "gone", "3")
	del(t, h, 1, "", "gone")
	books := map[string][]string{"": {"=1", "b=2"}, "alice": {"=9"}}
	for user, want := range books {
		h.WaitFor(5*time.Second, fmt.Sprintf("node 1 lists %q's book %v", user, want), func() bool {
			return fmt.Sprint(h.List(1, user)) == fmt.Sprint(want)
		})
	}

	del(t, h, 1, "", "") // a Delete of the empty contact, made on the peer
	books[""] = []string{"b=2"}
	h.WaitFor(5*time.Second, "node 0 drops the empty contact", func() bool {
		return fmt.Sprint(h.List(0, "")) == fmt.Sprint(books[""])
	})
	h.WaitConverged(10 * time.Second)

	h.Add() // pulls the whole state with AskForUpdate
	h.WaitConverged(20 * time.Second)
	for user, want := range books {
		require.Equal(t, want, h.List(2, user), "user %q on the new member", user)
	}
	st := h.Node(2).Node.Store
	for _, contact := range []string{"", "gone"} {
		e, ok, _ := st.Get(nil, []byte(contact))
		require.True(t, ok, "tombstone of %q transferred", contact)
		require.True(t, e.Deleted)
	}
	require.Greater(t, h.Node(2).Node.Sync.Stats().PullEntriesRx.Load(), uint64(0), "the state came by transfer")
}
