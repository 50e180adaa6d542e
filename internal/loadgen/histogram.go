package loadgen

import (
	"math/bits"
	"time"
)

// Histogram is an HDR-style latency histogram: 64 linear sub-buckets per
// power of two of microseconds, so every recorded value is kept within
// ~1.6% of its true value, in constant memory, whatever the run length.
type Histogram struct {
	counts [64 * 40]uint64
	n      uint64
	max    time.Duration
}

const subBuckets = 64

func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	exp := bits.Len64(us) - 7 // us >> exp is in [64,128)
	return (exp+1)*subBuckets + int(us>>uint(exp)) - subBuckets
}

func valueOf(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	exp := b/subBuckets - 1
	return uint64(b%subBuckets+subBuckets) << uint(exp)
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	b := min(bucketOf(us), len(h.counts)-1)
	h.counts[b]++
	h.n++
	h.max = max(h.max, d)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest recorded value.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the value at quantile q (0..1).
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(valueOf(b)) * time.Microsecond
		}
	}
	return h.max
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	for b, c := range o.counts {
		h.counts[b] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// CDF returns (milliseconds, fraction of values at or below) for every
// non-empty bucket, for plotting the distribution.
func (h *Histogram) CDF() [][2]float64 {
	var out [][2]float64
	var seen uint64
	for b, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		out = append(out, [2]float64{float64(valueOf(b)) / 1000, float64(seen) / float64(h.n)})
	}
	return out
}
