package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type vector struct {
	ok   bool
	desc string
	raw  []byte
}

const (
	sharedVectors = "../../shared/testdata/vectors.txt"
	repoVectors   = "testdata/vectors.txt"
)

// loadVectors reads the contract's vectors from ../shared when the checkout
// has it beside it, else the copy kept in testdata (same file).
func loadVectors(t testing.TB) []vector {
	path := sharedVectors
	if _, err := os.Stat(path); err != nil {
		path = repoVectors
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []vector
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, "|", 3)
		require.Len(t, parts, 3, "malformed vector line %q", line)
		raw, err := hex.DecodeString(strings.TrimSpace(parts[2]))
		require.NoError(t, err)
		out = append(out, vector{ok: strings.TrimSpace(parts[0]) == "ok", desc: strings.TrimSpace(parts[1]), raw: raw})
	}
	require.NotEmpty(t, out)
	return out
}

// frameKind says which decoder a vector is for, from its description.
func frameKind(desc string) string {
	switch {
	case strings.Contains(desc, "hello reply"):
		return "helloReply"
	case strings.Contains(desc, "hello"), strings.Contains(desc, "role byte"):
		return "hello"
	case strings.HasPrefix(desc, "ListAll reply"):
		return "listAllReply"
	case strings.Contains(desc, "client"):
		return "client"
	case strings.HasPrefix(desc, "server"):
		return "server"
	}
	return ""
}

// decodeAndReencode decodes raw with the decoder for kind and re-encodes what
// it decoded; it fails if the input has bytes left over.
func decodeAndReencode(kind string, raw []byte) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	d := NewDecoder(br)
	var out []byte
	var err error
	switch kind {
	case "hello":
		var h Hello
		if h, err = d.Hello(); err == nil {
			out, err = AppendHello(nil, h.Role, h.Name)
		}
	case "helloReply":
		var n []byte
		if n, err = d.HelloReply(); err == nil {
			out, err = AppendHelloReply(nil, n)
		}
	case "client":
		var f ClientFrame
		if err = d.ClientFrame(&f); err == nil {
			out, err = encodeClient(f)
		}
	case "server":
		var f ServerFrame
		if err = d.ServerFrame(&f); err == nil {
			out, err = encodeServer(f)
		}
	case "listAllReply":
		var n uint32
		if n, err = d.ListAllCount(0); err == nil {
			out = AppendListAllCount(nil, n)
			for i := uint32(0); i < n && err == nil; i++ {
				var c, p []byte
				if c, p, err = d.ListAllEntry(); err == nil {
					out, err = AppendListAllEntry(out, c, p)
				}
			}
		}
	}
	if err == nil && br.Buffered() != 0 {
		return nil, errTrailing
	}
	return out, err
}

var errTrailing = errors.New("bytes left over after the frame")

func encodeClient(f ClientFrame) ([]byte, error) {
	switch f.Op {
	case ClientUpdate:
		return AppendClientUpdate(nil, f.Contact, f.Phone)
	case ClientDelete:
		return AppendClientDelete(nil, f.Contact)
	default:
		return AppendClientListAll(nil), nil
	}
}

func encodeServer(f ServerFrame) ([]byte, error) {
	switch f.Op {
	case ServerUpdate:
		return AppendServerUpdate(nil, f.Clock, f.User, f.Contact, f.Phone)
	case ServerDelete:
		return AppendServerDelete(nil, f.Clock, f.User, f.Contact)
	case ServerHeartBeat:
		return AppendHeartBeat(nil, f.Health, f.Clock), nil
	case ServerUpdateClock:
		return AppendUpdateClock(nil, f.Clock), nil
	default:
		return AppendAskForUpdate(nil), nil
	}
}

// The repo's copy must be the contract's file, byte for byte: a clean clone
// without ../shared tests against the copy alone.
func TestRepoVectorsAreTheContracts(t *testing.T) {
	shared, err := os.ReadFile(sharedVectors)
	if os.IsNotExist(err) {
		t.Skip("no ../shared beside this checkout: only the repo copy of the vectors is available")
	}
	require.NoError(t, err)
	repo, err := os.ReadFile(repoVectors)
	require.NoError(t, err)
	require.Equal(t, string(shared), string(repo), "copy ../shared/testdata/vectors.txt over wire/testdata/vectors.txt")
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.desc, func(t *testing.T) {
			kind := frameKind(v.desc)
			require.NotEmpty(t, kind, "no decoder known for this vector")
			out, err := decodeAndReencode(kind, v.raw)
			if v.ok {
				require.NoError(t, err)
				require.Equal(t, hex.EncodeToString(v.raw), hex.EncodeToString(out), "re-encoding differs")
			} else {
				require.Error(t, err)
				require.True(t, IsViolation(err), "want a protocol violation, got %v", err)
			}
		})
	}
}

// Every ok vector cut short at every offset is refused with an error, never
// decoded and never a panic.
func TestVectorsTruncated(t *testing.T) {
	for _, v := range loadVectors(t) {
		if !v.ok {
			continue
		}
		kind := frameKind(v.desc)
		for cut := 0; cut < len(v.raw); cut++ {
			_, err := decodeAndReencode(kind, v.raw[:cut])
			require.Error(t, err, "%s cut at %d decoded", v.desc, cut)
		}
	}
}
