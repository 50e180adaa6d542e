package wire

import (
	"bufio"
	"bytes"
	"testing"
)

// repeatReader serves the same bytes forever without allocating.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func BenchmarkDecodeClientUpdate(b *testing.B) {
	frame, _ := AppendClientUpdate(nil, []byte("Juan"), []byte("85999999999"))
	d := NewDecoder(bufio.NewReaderSize(&repeatReader{data: bytes.Repeat(frame, 64)}, 64<<10))
	var f ClientFrame
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := d.ClientFrame(&f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeServerUpdate(b *testing.B) {
	frame, _ := AppendServerUpdate(nil, 11, []byte("Beloin"), []byte("Juan"), []byte("85999999999"))
	d := NewDecoder(bufio.NewReaderSize(&repeatReader{data: bytes.Repeat(frame, 64)}, 64<<10))
	var f ServerFrame
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := d.ServerFrame(&f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeServerUpdate(b *testing.B) {
	buf := make([]byte, 0, ServerUpdateSize)
	u, c, p := []byte("Beloin"), []byte("Juan"), []byte("85999999999")
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendServerUpdate(buf[:0], 11, u, c, p)
	}
}

// TestDecodeAllocatesNothing pins the zero-allocation decode path in the
// test suite too, not only in benchmark output.
func TestDecodeAllocatesNothing(t *testing.T) {
	frame, _ := AppendClientUpdate(nil, []byte("Juan"), []byte("85999999999"))
	d := NewDecoder(bufio.NewReaderSize(&repeatReader{data: bytes.Repeat(frame, 64)}, 64<<10))
	var f ClientFrame
	allocs := testing.AllocsPerRun(1000, func() {
		if err := d.ClientFrame(&f); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("decode allocates %.1f times per frame, want 0", allocs)
	}
}
