package server

import (
	"sync"
	"time"
)

// connRate limits new connections per source address with one token bucket
// each (rate per second, burst = rate), so that one address cannot exhaust
// the server's connection slots or its accept loop.
type connRate struct {
	mu        sync.Mutex
	rate      float64
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens  float64
	last    time.Time
	lastLog time.Time
}

func newConnRate(rate float64) *connRate {
	return &connRate{rate: rate, buckets: map[string]*bucket{}}
}

// allow takes a token for ip; logNow says whether this refusal should be
// logged (at most once a second per address).
func (r *connRate) allow(ip string, now time.Time) (ok, logNow bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.lastSweep) > time.Minute { // forget quiet addresses
		for k, b := range r.buckets {
			if now.Sub(b.last) > time.Minute {
				delete(r.buckets, k)
			}
		}
		r.lastSweep = now
	}
	b := r.buckets[ip]
	if b == nil {
		b = &bucket{tokens: r.rate, last: now}
		r.buckets[ip] = b
	}
	b.tokens = min(r.rate, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, false
	}
	if now.Sub(b.lastLog) >= time.Second {
		b.lastLog = now
		return false, true
	}
	return false, false
}
