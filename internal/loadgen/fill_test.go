package loadgen

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBookSizes(t *testing.T) {
	t.Run("fixed", func(t *testing.T) {
		sizes, err := BookSizes(FillConfig{Users: 3, Contacts: 7})
		require.NoError(t, err)
		require.Equal(t, []int{7, 7, 7}, sizes)
	})
	t.Run("total in varied books", func(t *testing.T) {
		cfg := FillConfig{Total: 1_000_000, Contacts: 10_000, MinContacts: 100}
		sizes, err := BookSizes(cfg)
		require.NoError(t, err)
		sum, small, large := 0, 0, 0
		for i, n := range sizes {
			sum += n
			if i < len(sizes)-1 { // the last is cut to fit
				require.GreaterOrEqual(t, n, 100)
			}
			require.LessOrEqual(t, n, 10_000)
			if n < 1000 {
				small++
			} else {
				large++
			}
		}
		require.Equal(t, 1_000_000, sum)
		require.Equal(t, 10_000, sizes[0], "book 0 is the largest")
		// evenly over the logarithm: about as many books below 1,000 as above
		require.InDelta(t, 1.0, float64(small)/float64(large), 0.3)
		again, _ := BookSizes(cfg)
		require.Equal(t, sizes, again, "the same command writes the same books")
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := BookSizes(FillConfig{Total: 10})
		require.Error(t, err)
		_, err = BookSizes(FillConfig{Contacts: 10})
		require.Error(t, err)
	})
}
