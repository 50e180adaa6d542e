package loadgen

import (
	"testing"

	"github.com/contactstore/contactstore/wire"
	"github.com/stretchr/testify/require"
)

func TestPreparedBlockHonoursDeleteRatio(t *testing.T) {
	block, n := prepare(0, 100, 11, 0.25)
	ends := frameEnds(block)
	require.Len(t, ends, n)
	require.Equal(t, len(block), ends[len(ends)-1], "frames tile the block exactly")
	deletes := 0
	for i, end := range ends {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		if block[start] == byte(wire.ClientDelete) {
			deletes++
			require.Equal(t, wire.ClientDeleteSize, end-start)
		}
	}
	require.Equal(t, 25, deletes)
}
