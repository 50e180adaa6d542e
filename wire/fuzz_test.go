package wire

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// chunkedReader returns its data in pieces whose sizes come from the fuzz
// input, so frames arrive split at arbitrary offsets.
type chunkedReader struct {
	data   []byte
	chunks []byte
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.chunks) > 0 {
		n = int(c.chunks[0])%64 + 1
		c.chunks = c.chunks[1:]
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzDecode feeds arbitrary bytes, split arbitrarily, to every decoder. No
// input may panic, and whatever decodes must re-encode to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.raw, []byte{3, 200, 17})
	}
	f.Fuzz(func(t *testing.T, data, chunks []byte) {
		for _, kind := range []string{"hello", "client", "server"} {
			d := NewDecoder(bufio.NewReaderSize(&chunkedReader{data: data, chunks: chunks}, 16))
			consumed := 0
			for range 64 {
				var out []byte
				var err error
				switch kind {
				case "hello":
					var h Hello
					if h, err = d.Hello(); err == nil {
						out, err = AppendHello(nil, h.Role, h.Name)
					}
				case "client":
					var cf ClientFrame
					if err = d.ClientFrame(&cf); err == nil {
						out, err = encodeClient(cf)
					}
				case "server":
					var sf ServerFrame
					if err = d.ServerFrame(&sf); err == nil {
						out, err = encodeServer(sf)
					}
				}
				if err != nil {
					break
				}
				// Re-encoding normalises padding after the NUL, so compare
				// by decoding the re-encoded bytes once more.
				if len(out) == 0 || consumed+len(out) > len(data) || data[consumed] != out[0] {
					t.Fatalf("%s: re-encoded frame does not match input at %d", kind, consumed)
				}
				again, err := decodeAndReencode(kind, out)
				if err != nil || !bytes.Equal(again, out) {
					t.Fatalf("%s: re-encoded frame does not round-trip: %v", kind, err)
				}
				consumed += len(out)
			}
		}
	})
}
