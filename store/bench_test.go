package store

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time: under a loaded machine
// it measures the work, where ns/op measures the contention too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngest is the store's share of bench/ingest.sh: writers each
// stage a read buffer's worth of Updates (236 frames of 277 bytes fit in
// 64 KiB) and commit, rewriting their own 1,000 contacts (b.N Updates in
// all, over GOMAXPROCS×4 writers).
func BenchmarkIngest(b *testing.B) {
	for _, fresh := range []bool{false, true} {
		b.Run(fmt.Sprintf("fresh=%v", fresh), func(b *testing.B) {
			s := openTest(b, b.TempDir(), func(c *Config) { c.MaxContactsPerBook = 0 })
			var next atomic.Int64
			phone := []byte("85999999999")
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			cpu0 := cpuTime()
			defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
			b.RunParallel(func(pb *testing.PB) {
				w := next.Add(1)
				user := []byte(fmt.Sprintf("user-%d", w))
				bt := s.NewBatch()
				var contact []byte
				i := 0
				for pb.Next() {
					n := i % 1000
					if fresh {
						n = i
					}
					contact = fmt.Appendf(contact[:0], "contact-%d-%07d", w, n)
					_ = bt.Update(user, contact, phone)
					if bt.Len() == 236 {
						if _, err := bt.Commit(); err != nil {
							b.Error(err)
							return
						}
					}
					i++
				}
				if _, err := bt.Commit(); err != nil {
					b.Error(err)
				}
			})
		})
	}
}

// BenchmarkApply is a peer's share of a replicated ingest: one reader
// stages a batch of remote changes (4,096, the batch a peer that is behind
// commits: its 256 KiB read buffer never runs dry), spread over 50 books as
// a writer's 50 client connections interleave them, and commits; shards in
// parallel, or one after another (KeepChanges keeps a batch on the caller's
// goroutine).
func BenchmarkApply(b *testing.B) {
	for _, fresh := range []bool{false, true} {
		for _, parallel := range []bool{false, true} {
			b.Run(fmt.Sprintf("fresh=%v/parallel=%v", fresh, parallel), func(b *testing.B) {
				s := openTest(b, b.TempDir(), func(c *Config) { c.MaxContactsPerBook = 0 })
				phone := []byte("85999999999")
				users := make([][]byte, 50)
				for i := range users {
					users[i] = []byte(fmt.Sprintf("bench-user-%02d", i))
				}
				bt := s.NewBatch()
				bt.KeepChanges = !parallel
				var contact []byte
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime()
				for i := 0; i < b.N; i++ {
					n := (i / 50) % 20000
					if fresh {
						n = i / 50
					}
					contact = fmt.Appendf(contact[:0], "contact-%07d", n)
					_ = bt.Apply(Change{User: users[i%50], Contact: contact,
						Entry: Entry{Stamp: uint32(1_700_000_000 + i/1000), Phone: phone}})
					if bt.Len() == 4096 {
						if _, err := bt.Commit(); err != nil {
							b.Fatal(err)
						}
					}
				}
				if _, err := bt.Commit(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// BenchmarkTailAdd adds one-change records (a client writing one contact
// at a time) to a full 4 MiB in-memory log tail.
func BenchmarkTailAdd(b *testing.B) {
	var t tail
	rec := make([]byte, 60)
	for i := range 100_000 {
		t.add(uint64(i+1), 1, rec, 4<<20)
	}
	b.ResetTimer()
	for i := range b.N {
		t.add(uint64(100_001+i), 1, rec, 4<<20)
	}
}
