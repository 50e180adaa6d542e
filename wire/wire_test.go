package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func TestEncodeRejectsValuesThatDoNotFit(t *testing.T) {
	long := bytes.Repeat([]byte("a"), MaxNameLen+1)
	tests := []struct {
		name string
		err  error
		enc  func() ([]byte, error)
	}{
		{"server hello empty name", ErrEmptyServerName, func() ([]byte, error) { return AppendHello(nil, RoleServer, nil) }},
		{"hello reply empty name", ErrEmptyServerName, func() ([]byte, error) { return AppendHelloReply(nil, nil) }},
		{"hello name 256 bytes", ErrValueTooLong, func() ([]byte, error) { return AppendHello(nil, RoleClient, long) }},
		{"update phone 20 bytes", ErrValueTooLong, func() ([]byte, error) {
			return AppendClientUpdate(nil, []byte("a"), bytes.Repeat([]byte("9"), 20))
		}},
		{"update contact with NUL", ErrValueHasNUL, func() ([]byte, error) { return AppendClientUpdate(nil, []byte("a\x00b"), nil) }},
		{"delete contact too long", ErrValueTooLong, func() ([]byte, error) { return AppendClientDelete(nil, long) }},
		{"server delete contact NUL", ErrValueHasNUL, func() ([]byte, error) { return AppendServerDelete(nil, 1, []byte("u"), []byte("\x00")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.enc()
			require.ErrorIs(t, err, tc.err)
		})
	}
}

func TestMaxLengthValuesRoundTrip(t *testing.T) {
	name := bytes.Repeat([]byte{0xff}, MaxNameLen) // non-UTF-8 bytes are opaque values
	phone := bytes.Repeat([]byte("9"), MaxPhoneLen)
	b, err := AppendServerUpdate(nil, 0xdeadbeef, name, name, phone)
	require.NoError(t, err)
	require.Len(t, b, ServerUpdateSize)
	d := NewDecoder(bufio.NewReader(bytes.NewReader(b)))
	var f ServerFrame
	require.NoError(t, d.ServerFrame(&f))
	require.Equal(t, ServerFrame{Op: ServerUpdate, Clock: 0xdeadbeef, User: name, Contact: name, Phone: phone}, f)
}

func TestFrameSizes(t *testing.T) {
	c, p := []byte("c"), []byte("1")
	cu, _ := AppendClientUpdate(nil, c, p)
	cd, _ := AppendClientDelete(nil, c)
	su, _ := AppendServerUpdate(nil, 1, c, c, p)
	sd, _ := AppendServerDelete(nil, 1, c, c)
	h, _ := AppendHello(nil, RoleServer, c)
	le, _ := AppendListAllEntry(nil, c, p)
	for _, tc := range []struct {
		name string
		b    []byte
		want int
	}{
		{"client update", cu, ClientUpdateSize}, {"client delete", cd, ClientDeleteSize},
		{"listall", AppendClientListAll(nil), ClientListAllSize},
		{"server update", su, 537}, {"server delete", sd, 517},
		{"heartbeat", AppendHeartBeat(nil, HealthServing, 1), 6},
		{"updateclock", AppendUpdateClock(nil, 1), 5},
		{"askforupdate", AppendAskForUpdate(nil), 1},
		{"hello", h, HelloSize}, {"listall entry", le, ListAllEntrySize},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Len(t, tc.b, tc.want) })
	}
}

// A receiver takes the bytes before the first NUL and ignores the rest.
func TestBytesAfterNULAreIgnored(t *testing.T) {
	b, err := AppendClientDelete(nil, []byte("Juan"))
	require.NoError(t, err)
	copy(b[1+5:], "garbage")
	var f ClientFrame
	require.NoError(t, NewDecoder(bufio.NewReader(bytes.NewReader(b))).ClientFrame(&f))
	require.Equal(t, "Juan", string(f.Contact))
}

func TestViolationsAreTyped(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		server bool
		want   error
		reason string
	}{
		{"unknown client opcode 0", []byte{0}, false, ErrUnknownOpcode, "unknown_opcode"},
		{"unknown server opcode 6", []byte{6}, true, ErrUnknownOpcode, "unknown_opcode"},
		{"client delete no NUL", append([]byte{2}, bytes.Repeat([]byte("x"), 256)...), false, ErrNoNUL, "no_nul"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(bufio.NewReader(bytes.NewReader(tc.in)))
			var err error
			if tc.server {
				err = d.ServerFrame(&ServerFrame{})
			} else {
				err = d.ClientFrame(&ClientFrame{})
			}
			require.ErrorIs(t, err, tc.want)
			var v *ViolationError
			require.True(t, errors.As(err, &v))
			require.Equal(t, tc.reason, v.Reason())
			require.NotEmpty(t, v.Error())
		})
	}
}

func TestCleanEOFBetweenFrames(t *testing.T) {
	d := NewDecoder(bufio.NewReader(strings.NewReader("\x03")))
	var f ClientFrame
	require.NoError(t, d.ClientFrame(&f))
	require.Equal(t, ClientListAll, f.Op)
	require.ErrorIs(t, d.ClientFrame(&f), io.EOF)
}

func TestListAllCountLimit(t *testing.T) {
	d := NewDecoder(bufio.NewReader(bytes.NewReader([]byte{0, 0, 0, 11})))
	_, err := d.ListAllCount(10)
	require.ErrorIs(t, err, ErrListAllTooLong)
}

// Frames split into one-byte reads decode the same as whole ones.
func TestDecodeFromOneByteReads(t *testing.T) {
	var stream []byte
	stream, _ = AppendServerUpdate(stream, 7, []byte("u"), []byte("c"), []byte("1"))
	stream = AppendHeartBeat(stream, HealthSyncing, 0)
	stream, _ = AppendServerDelete(stream, 8, []byte("u"), []byte("c"))
	d := NewDecoder(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(stream)), 16))
	var ops []ServerOp
	for {
		var f ServerFrame
		err := d.ServerFrame(&f)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		ops = append(ops, f.Op)
	}
	require.Equal(t, []ServerOp{ServerUpdate, ServerHeartBeat, ServerDelete}, ops)
}

func TestStrings(t *testing.T) {
	require.Equal(t, "Update", ClientUpdate.String())
	require.Equal(t, "ClientOp(9)", ClientOp(9).String())
	require.Equal(t, "AskForUpdate", ServerAskForUpdate.String())
	require.Equal(t, "ServerOp(0)", ServerOp(0).String())
	require.Equal(t, "Server", RoleServer.String())
	require.Equal(t, "Role(7)", Role(7).String())
	require.Equal(t, "syncing", HealthSyncing.String())
}

func TestAppendListAllEntryStringMatchesBytes(t *testing.T) {
	a, err := AppendListAllEntry(nil, []byte("Ana"), []byte("+55 85 3333-0000"))
	require.NoError(t, err)
	b, err := AppendListAllEntryString(nil, "Ana", "+55 85 3333-0000")
	require.NoError(t, err)
	require.Equal(t, a, b)
	_, err = AppendListAllEntryString(nil, "a\x00", "1")
	require.ErrorIs(t, err, ErrValueHasNUL)
	_, err = AppendListAllEntryString(nil, "a", strings.Repeat("1", 20))
	require.ErrorIs(t, err, ErrValueTooLong)
}

// Empty names are ordinary values (PROTOCOL.md "Errors"): every frame that
// carries a user or contact name encodes an empty one and decodes it back.
func TestEmptyNamesRoundTrip(t *testing.T) {
	empty, c, p := []byte{}, []byte("c"), []byte("1")
	tests := []struct {
		name string
		kind string
		enc  func() ([]byte, error)
	}{
		{"client hello, empty user", "hello", func() ([]byte, error) { return AppendHello(nil, RoleClient, empty) }},
		{"client Update, empty contact", "client", func() ([]byte, error) { return AppendClientUpdate(nil, empty, p) }},
		{"client Update, empty contact and phone", "client", func() ([]byte, error) { return AppendClientUpdate(nil, empty, empty) }},
		{"client Delete, empty contact", "client", func() ([]byte, error) { return AppendClientDelete(nil, empty) }},
		{"server Update, empty user", "server", func() ([]byte, error) { return AppendServerUpdate(nil, 7, empty, c, p) }},
		{"server Update, empty contact", "server", func() ([]byte, error) { return AppendServerUpdate(nil, 7, c, empty, p) }},
		{"server Update, both empty", "server", func() ([]byte, error) { return AppendServerUpdate(nil, 7, empty, empty, p) }},
		{"server Delete, empty user", "server", func() ([]byte, error) { return AppendServerDelete(nil, 8, empty, c) }},
		{"server Delete, both empty", "server", func() ([]byte, error) { return AppendServerDelete(nil, 8, empty, empty) }},
		{"ListAll reply, empty contact", "listAllReply", func() ([]byte, error) {
			return AppendListAllEntry(AppendListAllCount(nil, 1), empty, p)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.enc()
			require.NoError(t, err)
			out, err := decodeAndReencode(tc.kind, b)
			require.NoError(t, err)
			require.Equal(t, b, out)
		})
	}
}

// Only a server's own name must be non-empty: a role-1 hello and the hello
// reply with an empty name are violations, with their own reason.
func TestEmptyServerNameIsAViolation(t *testing.T) {
	tests := []struct {
		name string
		kind string
		in   []byte
	}{
		{"server hello", "hello", append([]byte{byte(RoleServer)}, make([]byte, NameWidth)...)},
		{"hello reply", "helloReply", make([]byte, NameWidth)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeAndReencode(tc.kind, tc.in)
			require.ErrorIs(t, err, ErrEmptyServerName)
			var v *ViolationError
			require.True(t, errors.As(err, &v))
			require.Equal(t, "empty_server_name", v.Reason())
		})
	}
}
