package loadgen

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistogramQuantilesWithinPrecision(t *testing.T) {
	var h Histogram
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * 10 * time.Microsecond) // 10us .. 100ms uniform
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.0, 10 * time.Microsecond}} {
		got := h.Quantile(tc.q)
		require.InDelta(t, float64(tc.want), float64(got), float64(tc.want)*0.02, "q=%v", tc.q)
	}
	require.Equal(t, 100*time.Millisecond, h.Max())
	require.Equal(t, uint64(10000), h.Count())
}

func TestHistogramBucketsRoundTrip(t *testing.T) {
	for us := uint64(0); us < 1<<22; us = us*11/10 + 1 {
		v := valueOf(bucketOf(us))
		require.LessOrEqual(t, v, us)
		require.GreaterOrEqual(t, float64(v), float64(us)*0.98, "us=%d", us)
	}
}
