package clustertest

import (
	"testing"

	"go.uber.org/goleak"
)

// Every cluster test ends with every node's goroutines gone: connections,
// feeds, dial loops, memberlist, stores.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
